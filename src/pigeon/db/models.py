"""Every domain's models, imported so that the metadata knows the whole schema."""

from pigeon.accounts import models as _accounts  # noqa: F401
from pigeon.db.base import Base
from pigeon.delivery import models as _delivery  # noqa: F401
from pigeon.messages import models as _messages  # noqa: F401

metadata = Base.metadata
