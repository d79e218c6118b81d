"""Everything that talks to contracts: the chain client (one Multicall3 read per
cycle), the trade sender, trade planning and receipts, accounts, deployment records,
the AccessManager role table and admin operations, npm artifacts and the node check.
May import keepers.base and keepers.settings."""
