"""The workflow store conformance suite: subclass ``WorkflowStoreConformance``, define ``make_store``.

Every rule of the WorkflowStore contract (DESIGN section 8) is a test here, grouped by theme in
the ``_store_suite_*`` modules like the transport suite.
"""

from __future__ import annotations

from ._store_suite_basics import StoreBasicsTests
from ._store_suite_content import StoreContentTests
from ._store_suite_counts import StoreCountsTests
from ._store_suite_listing import StoreListingTests
from ._store_suite_order import StoreOrderTests
from ._store_suite_statuses import StoreStatusTests
from ._store_suite_watch import StoreWatchTests

__all__ = ["WorkflowStoreConformance"]


class WorkflowStoreConformance(
    StoreBasicsTests,
    StoreOrderTests,
    StoreStatusTests,
    StoreListingTests,
    StoreWatchTests,
    StoreContentTests,
    StoreCountsTests,
):
    """Every rule of the WorkflowStore contract, as tests. Subclass and define ``make_store``.

    Tests give every workflow (and every activity name) a fresh uuid, so a store shared by
    several tests (a schema per run) works: nothing assumes the store starts empty.

    - ``make_store()`` (required): a new, unconnected store under test.
    - ``stored_text(store)`` (optional): everything the store persisted as text (a file's
      bytes, a table dump); the suite then checks no token is anywhere in it.
    - ``watch_timeout`` (10.0): seconds a change may take to reach ``watch()``.
    """
