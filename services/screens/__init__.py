"""Screens and casting: what the household sees on its TVs, whatever the operator's box.

`Screens` puts alarms, reminders and announcements on every TV of a household
through the boxes' `notify` capability; `CastRenderers` announces a virtual DLNA
renderer per household so that a phone can cast to the TV.
"""

from linli.services.screens.cast import CAST, CastRenderers
from linli.services.screens.screens import SCREENS, Screens

__all__ = ["CAST", "SCREENS", "CastRenderers", "Screens"]
