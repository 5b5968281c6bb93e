"""SMPP 3.4: a pure PDU codec and session state; the asyncio transport lives beside it."""
