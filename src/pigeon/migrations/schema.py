"""Every domain's models, imported so that the metadata knows the whole schema (for Alembic's
``env.py`` and the schema test)."""

from pigeon.accounts import models as _accounts  # noqa: F401
from pigeon.audit import models as _audit  # noqa: F401
from pigeon.campaigns import models as _campaigns  # noqa: F401
from pigeon.consent import models as _consent  # noqa: F401
from pigeon.contacts import models as _contacts  # noqa: F401
from pigeon.db.base import Base
from pigeon.delivery import models as _delivery  # noqa: F401
from pigeon.incidents import models as _incidents  # noqa: F401
from pigeon.media import models as _media  # noqa: F401
from pigeon.messages import models as _messages  # noqa: F401
from pigeon.numbers import models as _numbers  # noqa: F401
from pigeon.oauth import models as _oauth  # noqa: F401
from pigeon.ratelimits import models as _ratelimits  # noqa: F401
from pigeon.sending import models as _sending  # noqa: F401
from pigeon.templates import models as _templates  # noqa: F401
from pigeon.webhooks import models as _webhooks  # noqa: F401

metadata = Base.metadata
