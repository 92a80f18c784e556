"""Radiology workflow, pure parts (issue 5): ingestion rules, zip safety, series settling.

No database, web framework or environment reads here (``tests/unit/test_layering.py``);
adapters are :mod:`medbrain.store.radiology`, ``api/routers/dicomweb.py`` and
``api/routers/radiology_worklist.py``.
"""
