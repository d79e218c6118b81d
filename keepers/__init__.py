"""The live side of QIE Sentinel: configuration, persistence, market data, execution."""
