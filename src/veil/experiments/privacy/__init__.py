"""`veil report privacy`: every scheme attacked to saturation under every threat model (the protocol, the
saturation search, report.md), and what the report means for a user (verdicts, `veil recommend`)."""
