"""The local market replay (`ape run simulate`, `make run`): the market driver that
moves every feed and pool each bar, the bar loop that runs the users' cycles, and the
report that compares the replay with the backtester. The top floor: may import any
keepers sub-package."""
