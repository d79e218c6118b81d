"""Building a system on a chain: the deployer, the oracle registration, funding of
local test users and the local test market (test tokens, mock feeds, Uniswap V2).
Only the local market touches Mock contracts, and only on local networks. May import
keepers.base, keepers.settings and keepers.chain."""
