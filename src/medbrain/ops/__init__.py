"""Hospital operations: synthetic activity, outpatient forecasts, beds, consumables, cockpit.

Pure engines (no web, no database): the adapters in ``api/routers/ops.py``, ``store/ops.py``
and ``cli.py`` read the pre-aggregated department-day table and call these functions.
"""

from medbrain.ops.cockpit import DailyTable, DeptInfo, compute_cockpit, drill_down
from medbrain.ops.knowledge import OpsKnowledge, load_ops_knowledge

__all__ = [
    "DailyTable",
    "DeptInfo",
    "OpsKnowledge",
    "compute_cockpit",
    "drill_down",
    "load_ops_knowledge",
]
