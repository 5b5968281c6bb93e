"""(being written)"""

from fastapi import APIRouter

from pigeon.api.zoomconnect.deps import PREFIX

router = APIRouter(prefix=PREFIX)
