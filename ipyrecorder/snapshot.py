"""History after the fact: logs rebuilt from AsyncResults, and ipy_client_usage's ``dump``.

ipyparallel forgets ``client.metadata`` once tasks finish, but each AsyncResult
keeps the metadata of its own tasks. ``snapshot`` turns that into a log whose
header says it was reconstructed: there were no live events, so attempts,
output chunks and engine arrivals are not known, only each task's final record.
"""

from __future__ import annotations

import os
import tempfile
from typing import Iterable

from .log import LogWriter, new_header
from .messages import final_record_events, metadata_completion
from .translate import names_for


def _async_results(source) -> list:
    """AsyncResults from an AsyncResult, an iterable of them, or a Client/View's history."""
    if hasattr(source, "msg_ids") and hasattr(source, "metadata"):
        return [source]
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes)):
        return [ar for item in source for ar in _async_results(item)]
    raise TypeError(f"snapshot() takes AsyncResults, not {type(source).__name__}")


def _events_for(ar, names: dict):
    """Event dicts for one AsyncResult's tasks, from its metadata."""
    metadata = ar.metadata if isinstance(ar.metadata, list) else [ar.metadata]
    several = len(metadata) > 1
    function = getattr(ar, "_fname", None)
    for index, md in enumerate(metadata):
        msg_id = md["msg_id"]
        engine_id = md.get("engine_id") if isinstance(md.get("engine_id"), int) else None
        yield {
            "kind": "submit",
            "msg_id": msg_id,
            "t": md.get("submitted"),
            "function": function,
            "label": md.get("label"),
            "chunk": index if several else None,
        }
        yield from final_record_events(msg_id, md, engine_id)
        if md.get("status") is not None:
            yield metadata_completion(msg_id, md, engine_id)
        if msg_id in names:
            yield {"kind": "label", "msg_id": msg_id, "name": str(names[msg_id])}


def snapshot(source, path, names=None, mode: str = "w") -> str:
    """Write a log for tasks that ran without a recording, from their AsyncResults.

    ``names`` is a dict msg_id -> name or a callable(AsyncResult) -> names, as for
    ``recording``. The header carries ``reconstructed: True`` and a note.
    """
    results = _async_results(source)
    header = new_header(
        reconstructed=True, note="reconstructed after the fact from AsyncResult metadata by ipyrecorder.snapshot"
    )
    engines = {}
    with LogWriter(path, mode, header) as log:
        for ar in results:
            for md in ar.metadata if isinstance(ar.metadata, list) else [ar.metadata]:
                if isinstance(md.get("engine_id"), int) and md.get("engine_uuid"):
                    engines[md["engine_id"]] = md["engine_uuid"]
        for engine_id, uuid in sorted(engines.items()):
            log.append(
                {"kind": "engine_register", "t": header["t0"], "engine_id": engine_id, "uuid": uuid, "present": True}
            )
        for ar in results:
            mapping = names if isinstance(names, dict) else names_for(ar, names) if callable(names) else {}
            for event in _events_for(ar, mapping):
                log.append(event)
    return os.fspath(path)


def dump(fh, source, uuid_to_name=None) -> None:
    """ipy_client_usage's one call: write a JSON dump of ``source``'s tasks to ``fh``.

    Built on ``snapshot`` and the json sink; tasks are keyed by msg_id, with their
    name (from ``uuid_to_name``) included, so equal names never overwrite each other.
    """
    from .sink import Log, get_sink

    with tempfile.TemporaryDirectory(prefix="ipyrecorder-dump-") as tmp:
        path = os.path.join(tmp, "snapshot.mpk")
        snapshot(source, path, names=uuid_to_name)
        get_sink("json")().write(Log(path), fh)
