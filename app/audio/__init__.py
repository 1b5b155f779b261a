"""Audio as numpy arrays: decode, resample, voice activity, packing into pieces; the pieces go on to app/scheduling/."""
