"""The running daemon: sources, polls, schedule and publication of one spec; reload swaps them."""
