"""The chain as the referee: `ape run keeper verify` and `ape run keeper rebuild --from-chain`.

Owns reading a deployment's public history (the Executor's and the Vault's events, the
feeds' rounds) into one user's timeline, the proof of each keeper trade against it (the
trade id's (strategy, bar), the strategy re-run on that bar's closes, the user engine's
side, size and limits), and the rebuild of an empty store from that history. Reads the
chain and the users' and strategies files only, never a store (verify), and writes a
store only through its own methods (rebuild).
May import keepers.base, settings, persistence, chain and engine, and strategies; the
replay imports it (the report's verify line), nothing below it does.
"""
