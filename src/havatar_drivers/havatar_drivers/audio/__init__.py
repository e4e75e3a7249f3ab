"""Audio for the microphone and speaker nodes: PCM helpers, sources, sinks, jitter buffer, TTS."""
