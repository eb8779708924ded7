"""Architecture search: a space of candidate specs, strategies that propose them, and the loop that trains them."""
