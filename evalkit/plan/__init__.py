"""Planning a run before it starts: which servers each notebook starts or reuses, and whether they fit a machine.

``evalkit plan --profile full --hardware L4`` prints it; ``evalkit run`` makes the same plan first and refuses one
that cannot fit before the first server starts. :mod:`~evalkit.plan.hardware` is the table of machines
(``data/hardware.yaml``), :mod:`~evalkit.plan.build` the plan, :mod:`~evalkit.plan.expected` what a GPU should
show on paper (bandwidth ceilings and published measurements, never presented as measured here).
"""

from evalkit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "build": ("Plan", "PlanError", "make_plan"),
    "hardware": ("Hardware", "detect_hardware", "get_hardware", "hardware_table"),
})
