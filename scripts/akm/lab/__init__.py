"""The virtual library: the whole centre as real Debian machines on one computer (issue 3).

``akm lab up|down|status|reset HOST|ssh HOST``. See ``docs/lab.md`` for the design; the modules are
:mod:`~akm.lab.plan` (inventory → topology, pure), :mod:`~akm.lab.network`, :mod:`~akm.lab.aptcache`,
:mod:`~akm.lab.image`, :mod:`~akm.lab.internet`, :mod:`~akm.lab.machines` and :mod:`~akm.lab.lab`
(orchestration).
"""

from akm.lab.lab import ansible_vars, key_paths
from akm.lab.plan import LabError, Plan, plan_lab

__all__ = ["LabError", "Plan", "ansible_vars", "key_paths", "plan_lab"]
