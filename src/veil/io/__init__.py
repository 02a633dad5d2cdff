"""Artifact input and output, in three modules that callers import by name: `veil.io.read` (reading files, each
failure a VeilError naming the file), `veil.io.write` (one file written atomically, owner-only where secret) and
`veil.io.output` (a command's output transaction, `claim_output`)."""
