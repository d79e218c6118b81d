"""What the operator writes: the keeper settings (keeper.yaml, users, SENTINEL_
variables), the network files (data/networks/), the network names a user types and
their node URLs, and the strict YAML reading they share. May import keepers.base only."""
