#!/usr/bin/env python3
"""gpucheck-wav.py OUT.wav SECONDS — a 16 kHz mono 16-bit WAV (a 440 Hz tone with a little noise) for
the transcription requests of scripts/gpu-check.sh. Standard library only."""
import math
import random
import struct
import sys
import wave

out, secs = sys.argv[1], float(sys.argv[2])
rnd = random.Random(1)
n = int(16000 * secs)
with wave.open(out, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(16000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000) + rnd.randint(-300, 300)))
                           for i in range(n)))
