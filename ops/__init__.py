"""The on-call verbs, against a deployed stack (its outputs) or an emulator endpoint.

Each module is one verb (``status``, ``runs``, ``verify``, ``trace``, ``dlq``, ``locks``,
``queries``) over one shared target (:mod:`ops.target`); reconciliation (:mod:`ops.reconcile`) is
the same code the load test judges its runs with. The ``cidb`` CLI (``cidb/``) only prints them.
"""
