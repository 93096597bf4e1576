"""The set-top box contract, shared by every operator's adapter.

One contract (`schemas.py`: the STB capability kinds with a JSON Schema for each
state and command), one channel record for both networks (`channels.py`), and
the machinery that makes two operators' boxes behave alike (`fleet.py`): command
validation, uniform `not_supported` / `unavailable` errors, read-back
confirmation, last-seen tracking and wake-up. Operator adapters only supply a
`BoxDriver` (`driver.py`) that speaks their box's protocol.

Kept free of imports so that `gateway.capabilities` can load the schemas.
"""
