import torch

from models.whisper import WhisperModel
from models.whisper.rules import build_rule

NEG = float("-inf")


def rule_for(model: WhisperModel):  # type: ignore[no-untyped-def]
    return build_rule(model.rule_args)


def logits(vocab: int = 51865, text_ahead: bool = True) -> torch.Tensor:
    """Flat logits; by default text tokens lead, so the rule does not force a timestamp."""
    x = torch.zeros(vocab)
    if text_ahead:
        x[:50364] = 10.0
    return x


def test_first_token_is_an_early_timestamp(whisper_base: WhisperModel) -> None:
    ts = whisper_base.vocab.timestamp_begin
    out = rule_for(whisper_base)([], logits())
    allowed = torch.isfinite(out).nonzero().flatten().tolist()
    assert allowed == list(range(ts, ts + 51))  # <|0.00|> .. <|1.00|>


def test_after_a_closed_pair_text_must_follow(whisper_base: WhisperModel) -> None:
    ts = whisper_base.vocab.timestamp_begin
    out = rule_for(whisper_base)([ts, 400, ts + 50, ts + 50], logits())
    assert torch.all(out[ts:] == NEG) and torch.isfinite(out[400])


def test_after_an_open_timestamp_only_timestamps_or_the_end(whisper_base: WhisperModel) -> None:
    v = whisper_base.vocab
    ts = v.timestamp_begin
    out = rule_for(whisper_base)([ts, 400, 401, ts + 50], logits())
    assert torch.all(out[: v.eot] == NEG) and torch.isfinite(out[v.eot])
    # Never backwards: the closing timestamp may repeat the last one but not go earlier.
    assert torch.all(out[ts : ts + 50] == NEG) and torch.isfinite(out[ts + 50])


def test_time_never_goes_back_inside_text(whisper_base: WhisperModel) -> None:
    ts = whisper_base.vocab.timestamp_begin
    x = logits()
    x[ts + 10] = 50.0  # a strong pull towards an earlier time
    out = rule_for(whisper_base)([ts, 400, ts + 100, ts + 100, 500], x)
    assert torch.all(out[ts : ts + 101] == NEG)


def test_timestamps_forced_when_they_outweigh_text(whisper_base: WhisperModel) -> None:
    ts = whisper_base.vocab.timestamp_begin
    x = logits(text_ahead=False)
    x[ts + 200 :] = 5.0
    out = rule_for(whisper_base)([ts, 400, 401], x)
    assert torch.all(out[:ts] == NEG)


def test_special_tokens_and_no_timestamps_are_suppressed(whisper_base: WhisperModel) -> None:
    v = whisper_base.vocab
    out = rule_for(whisper_base)([v.timestamp_begin, 400], logits())
    for token in (v.no_timestamps, v.sot, v.sot_prev, v.no_speech, v.languages["en"]):
        assert out[token] == NEG
    assert torch.isfinite(out[v.eot])


def test_a_shared_window_keeps_every_segment_inside_one_clip(whisper_base: WhisperModel) -> None:
    ts = whisper_base.vocab.timestamp_begin
    # Two clips: timestamps 0-100 (0-2 s) and 150-300 (3-6 s); 101-149 is the gap between them.
    rule = build_rule({**whisper_base.rule_args, "spans": [[0, 100], [150, 300]]})
    allowed = torch.isfinite(rule([ts, 400, ts + 100], logits())).nonzero().flatten().tolist()
    # After a closing stamp, the next segment opens in a clip, never in the gap or past the last clip.
    assert ts + 100 in allowed and ts + 150 in allowed and ts + 300 in allowed
    assert not any(ts + 101 <= t <= ts + 149 or t > ts + 300 for t in allowed)
    # A segment opened in the first clip closes within it, however much text it holds.
    inside = torch.isfinite(rule([ts + 10, 400, 401], logits(text_ahead=False))).nonzero().flatten().tolist()
    stamps = [t - ts for t in inside if t >= ts]
    assert stamps and min(stamps) == 11 and max(stamps) == 100
    # One opened in the second clip may run to that clip's end.
    later = torch.isfinite(rule([ts + 10, 400, ts + 90, ts + 160, 401], logits(text_ahead=False)))
    assert max(t - ts for t in later.nonzero().flatten().tolist() if t >= ts) == 300
