"""`python -m swarmcnn` is the `swarmcnn` command."""

import sys

from swarmcnn.cli import main

sys.exit(main())
