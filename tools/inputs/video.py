"""Videos (.mp4, .avi, .mov, .mkv, .gif) through PyAV -> a list of (seconds, PIL RGB frame).

Only a bounded set of frames is kept: `Limits.keep_frames` spread evenly over the video, plus
the frames that differ most from the frame before them (so a one-frame glitch survives the
thinning). Each kept frame's change score is in `extra["changes"]`, in payload order.
"""

from __future__ import annotations

import heapq
from pathlib import Path

import numpy as np

from tools.errors import InputError
from tools.inputs.base import Limits, Loaded, one_line, refuse_over

CHANGE_FRAMES = 16  # the most-changed frames kept beside the even ones
_THUMB = (32, 24)  # frames are compared at this size, in grey


class FrameSampler:
    """Keeps frames evenly (doubling its stride as the video goes on) and the most-changed ones."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.stride = 1
        self.even: list[tuple[int, float, object, float]] = []
        self.changed: list[tuple[float, int, float, object]] = []  # a min-heap on the change score
        self.previous: np.ndarray | None = None
        self.count = 0

    def add(self, frame, seconds: float) -> None:
        """Look at one decoded frame."""
        thumb = frame.to_ndarray(format="gray", width=_THUMB[0], height=_THUMB[1]).astype(np.float32)
        change = 0.0 if self.previous is None else float(np.abs(thumb - self.previous).mean() / 255.0)
        self.previous, index = thumb, self.count
        self.count += 1
        if index % self.stride == 0:
            self.even.append((index, seconds, self._image(frame), change))
            if len(self.even) > 2 * self.limits.keep_frames:
                self.even, self.stride = self.even[::2], self.stride * 2
        if change > 0 and (len(self.changed) < CHANGE_FRAMES or change > self.changed[0][0]):
            item = (change, index, seconds, self._image(frame))
            (heapq.heappush if len(self.changed) < CHANGE_FRAMES else heapq.heapreplace)(self.changed, item)

    def _image(self, frame):
        scale = min(1.0, self.limits.frame_long_side / max(frame.width, frame.height))
        width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
        return frame.to_image(width=width, height=height).convert("RGB")

    def frames(self) -> list[tuple[int, float, object, float]]:
        """(index, seconds, image, change) of every kept frame, in time order."""
        even = self.even
        if len(even) > self.limits.keep_frames:
            picks = np.linspace(0, len(even) - 1, self.limits.keep_frames).round().astype(int)
            even = [even[i] for i in sorted(set(picks.tolist()))]
        chosen = {item[0]: item for item in even}
        for change, index, seconds, image in self.changed:
            chosen.setdefault(index, (index, seconds, image, change))
        return [chosen[i] for i in sorted(chosen)]


def read_video(path: Path, limits: Limits) -> Loaded:
    """Decode a video with PyAV, keeping a bounded, evenly spread set of frames."""
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise InputError("the file has no video stream; upload a video (mp4, avi, mov, gif)")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        refuse_over("the number of pixels per frame", width * height, limits.max_pixels, "scale the video down")
        refuse_over("the number of frames", stream.frames or 0, limits.max_frames, "cut the video to the part of interest")
        fps = float(stream.average_rate or stream.guessed_rate or 0) or None
        sampler, note = FrameSampler(limits), None
        try:
            for frame in container.decode(stream):
                refuse_over("the number of frames", sampler.count + 1, limits.max_frames, "cut the video to the part of interest")
                sampler.add(frame, _seconds(frame, sampler.count, fps))
        except (av.FFmpegError, ValueError, OSError) as exc:
            if sampler.count == 0:
                raise InputError(f"no frame of the video could be decoded ({one_line(exc, 100)}); "
                                 "check that the file is complete or export it again") from exc
            note = f"decoding stopped after {sampler.count} frames ({one_line(exc, 80)}); the file may be truncated"
        codec = stream.codec_context.name
    return _loaded(sampler, fps, (width, height), codec, note)


def _seconds(frame, index: int, fps: float | None) -> float:
    if frame.time is not None and np.isfinite(frame.time):
        return float(frame.time)
    return index / fps if fps else float(index)


def _loaded(sampler: FrameSampler, fps: float | None, size: tuple[int, int], codec: str, note: str | None) -> Loaded:
    kept = sampler.frames()
    if not kept:
        raise InputError("the video holds no frames; check that the file is complete or export it again")
    start = kept[0][1]
    payload = [(round(seconds - start, 4), image) for _, seconds, image, _ in kept]
    duration = (sampler.count / fps) if fps else payload[-1][0]
    meta = {"frames": sampler.count, "fps": fps, "width": size[0], "height": size[1], "codec": codec,
            "duration_s": round(float(duration), 3), "kept_frames": len(payload)}
    if note:
        meta["note"] = note
    extra = {"changes": [change for *_, change in kept], "frame_numbers": [index for index, *_ in kept]}
    return Loaded("video", payload, meta, extra)
