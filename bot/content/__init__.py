"""Content editing for MRC staff: the review workflow, live publication to every worker, console pages."""

from ._live import LiveContentWatcher
from ._repo import (
    ImportReport,
    bump_content_version,
    content_version,
    export_content,
    import_content,
    load_live,
    publish_revision,
)
from ._routes import content_router
from ._store import export_live, import_baseline, import_with, seed_if_empty
from ._workflow import (
    DraftInvalid,
    EditConflict,
    NotPermitted,
    Publisher,
    StaleDraft,
    WorkflowError,
    approve,
    current_data,
    extend_review,
    reject,
    rollback,
    save_draft,
    withdraw_expired,
    word_diff,
)

__all__ = [
    "DraftInvalid",
    "EditConflict",
    "ImportReport",
    "LiveContentWatcher",
    "NotPermitted",
    "Publisher",
    "StaleDraft",
    "WorkflowError",
    "approve",
    "bump_content_version",
    "content_router",
    "content_version",
    "current_data",
    "export_content",
    "export_live",
    "extend_review",
    "import_baseline",
    "import_content",
    "import_with",
    "load_live",
    "publish_revision",
    "reject",
    "rollback",
    "save_draft",
    "seed_if_empty",
    "withdraw_expired",
    "word_diff",
]
