"""Tamper-evident audit log: who read or decided what, when (DESIGN.md §4, issue 3 item 5).

- :mod:`medbrain.audit.chain`: ``append`` (hash-chained entry in the caller's transaction),
  ``checkpoint`` and ``configure_checkpoints`` (Ed25519-signed commitments to the head).
- :mod:`medbrain.audit.verify`: ``verify`` recomputes the chain and checks the checkpoints.
- :mod:`medbrain.audit.keys`: the instance's signing key, ``load_or_create_signer``.
- :mod:`medbrain.audit.cli`: ``medbrain audit verify|checkpoint``.

Nothing is imported here, so ``medbrain --help`` does not pay for SQLAlchemy or cryptography.
"""
