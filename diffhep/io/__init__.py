"""Data at the edges of the system: reference measurements in and out.

- `read_yoda` / `write_yoda`: YODA text files (``Scatter2D`` V1/V2/V3 and YODA 2
  ``Estimate1D`` blocks) as `Scatter2D` objects; writing is atomic.
- `save_events` / `load_events`: `diffhep.Events` in `.npz` files with JSON metadata
  (what `diffhep shower` writes and `diffhep fit-alphas --data FILE.npz` fits);
  writing is atomic, reading checks every array and names the first bad event.
- `aleph_event_shapes`: the shipped ALEPH LEP1 thrust (x = T), C-parameter and
  Durham −ln y23 distributions at √s = 91.2 GeV; `ALEPH_91GEV_PATHS` names their
  YODA paths.
"""

from ._events_file import EVENTS_FORMAT as EVENTS_FORMAT, load_events as load_events, save_events as save_events
from ._reference import (
    ALEPH_91GEV_PATHS as ALEPH_91GEV_PATHS,
    ALEPH_91GEV_X as ALEPH_91GEV_X,
    aleph_event_shapes as aleph_event_shapes,
    aleph_yoda_path as aleph_yoda_path,
)
from ._yoda import Scatter2D as Scatter2D, read_yoda as read_yoda, write_yoda as write_yoda
