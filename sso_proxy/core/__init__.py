"""The request core: facts, routing, the decision. No I/O."""
