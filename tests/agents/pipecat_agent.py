"""A WebSocket voice agent whose wire format is Pipecat's own.

Trunkline connects to it as it would to a Pipecat bot behind a Twilio
Media Streams transport. Every message it reads and sends goes through
Pipecat's `TwilioFrameSerializer` (PyPI `pipecat-ai`, with
`auto_hang_up=False`, as a bot behind a non-Twilio carrier runs it), with
the pipeline at 16 kHz:

- the caller's `media` events are deserialized into 16 kHz
  `InputAudioRawFrame`s, and the tone in them is measured;
- once the caller has been heard, the agent speaks: a tone at `--hz`,
  rendered at 16 kHz and sent the way Pipecat's output transport sends
  speech, in ~95 ms chunks at uneven intervals (70-120 ms apart, each
  within 25 ms of the real-time schedule), each serialized by
  `TwilioFrameSerializer` into 8 kHz mu-law. Pipecat's resampler keeps
  back the first chunk and a few samples of each, so the agent sends
  chunks until what went out on the wire is `--seconds` long (to within
  one chunk's shortfall) and reports exactly how much that was;
- then it sends a mark and waits for the stream to stop.

It prints `LISTENING <port>` when ready and, once the stream has closed,
writes what it saw as JSON to `--out`.
"""

import argparse
import asyncio
import base64
import json
import math
import random
import sys
import time
import types

import websockets
from pipecat.frames.frames import OutputAudioRawFrame
from pipecat.serializers.twilio import TwilioFrameSerializer

RATE = 16000
CHUNK_MS = 95


def tone(hz, seconds, amplitude=0.5):
    n = int(RATE * seconds)
    peak = amplitude * 32767
    samples = (int(peak * math.sin(2 * math.pi * hz * i / RATE)) for i in range(n))
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


def pitch(pcm, rate):
    """Frequency by upward zero crossings of 16-bit little-endian PCM."""
    x = [int.from_bytes(pcm[i : i + 2], "little", signed=True) for i in range(0, len(pcm) - 1, 2)]
    crossings = [i for i in range(1, len(x)) if x[i - 1] < 0 <= x[i]]
    if len(crossings) < 3:
        return 0.0
    return (len(crossings) - 1) * rate / (crossings[-1] - crossings[0])


async def serve(args):
    result = {"media_sizes": [], "chunks_sent": 0, "intervals_ms": [], "sent_codes": 0}
    done = asyncio.Event()

    async def session(ws):
        serializer = None
        heard = bytearray()
        speaking = None
        try:
            async for text in ws:
                message = json.loads(text)
                event = message.get("event")
                if event == "start":
                    start = message["start"]
                    result["media_format"] = start.get("mediaFormat")
                    serializer = TwilioFrameSerializer(
                        stream_sid=message["streamSid"],
                        call_sid=start.get("callSid"),
                        params=TwilioFrameSerializer.InputParams(
                            auto_hang_up=False, sample_rate=RATE
                        ),
                    )
                    await serializer.setup(types.SimpleNamespace(audio_in_sample_rate=RATE))
                elif event == "media":
                    raw = base64.b64decode(message["media"]["payload"])
                    result["media_sizes"].append(len(raw))
                    frame = await serializer.deserialize(text)
                    if frame is not None:
                        heard.extend(frame.audio)
                    if speaking is None and len(heard) >= RATE // 2:
                        speaking = asyncio.create_task(speak(ws, serializer, message["streamSid"]))
                elif event == "mark":
                    result["mark_back"] = time.monotonic()
                    result["mark"] = message["mark"]["name"]
                elif event == "stop":
                    result["stop_reason"] = message["stop"].get("reason")
        except websockets.ConnectionClosed:
            pass
        result["close_code"] = ws.close_code
        result["close_reason"] = ws.close_reason
        result["caller_hz"] = pitch(bytes(heard[RATE:]), RATE)
        if speaking is not None:
            speaking.cancel()
        done.set()

    async def speak(ws, serializer, stream_sid):
        audio = tone(args.hz, args.seconds + 1.0)
        chunk = RATE * CHUNK_MS // 1000 * 2
        want = int(8000 * (args.seconds - 0.015))
        rng = random.Random(4475)
        begin = time.monotonic()
        last = None
        for k, at in enumerate(range(0, len(audio), chunk)):
            # Each chunk within 25 ms of its real-time slot: intervals of
            # 70-120 ms, as Pipecat's output transport sends speech.
            due = begin + k * CHUNK_MS / 1000 + rng.uniform(-0.015, 0.025) * (k > 0)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            if last is not None:
                result["intervals_ms"].append(round((now - last) * 1000))
            last = now
            frame = OutputAudioRawFrame(audio=audio[at : at + chunk], sample_rate=RATE, num_channels=1)
            text = await serializer.serialize(frame)
            if text is not None:
                await ws.send(text)
                result["chunks_sent"] += 1
                result["sent_codes"] += len(base64.b64decode(json.loads(text)["media"]["payload"]))
            if result["sent_codes"] >= want:
                break
        result["speech_sent"] = time.monotonic() - begin
        await ws.send(json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": "tone-end"}}))
        result["mark_sent"] = time.monotonic()

    async with websockets.serve(session, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        await asyncio.wait_for(done.wait(), timeout=args.timeout)
    if "mark_back" in result and "mark_sent" in result:
        result["mark_delay"] = result["mark_back"] - result["mark_sent"]
    with open(args.out, "w") as f:
        json.dump(result, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hz", type=float, default=440.0)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
