import numpy as np

from models.whisper.convert import hf_config, hf_state_dict
from models.whisper.ct2 import CT2Model

D, MELS, FFN, VOCAB = 8, 4, 32, 51865


def tiny_ct2(layers: int = 2) -> CT2Model:
    rng = np.random.default_rng(0)
    v: dict[str, np.ndarray] = {}

    def linear(name: str, rows: int, cols: int = D) -> None:
        v[f"{name}/weight"] = rng.standard_normal((rows, cols)).astype(np.float16)
        v[f"{name}/bias"] = rng.standard_normal(rows).astype(np.float16)

    def norm(name: str) -> None:
        v[f"{name}/gamma"] = np.ones(D, dtype=np.float16)
        v[f"{name}/beta"] = np.zeros(D, dtype=np.float16)

    v["encoder/conv1/weight"] = np.zeros((D, MELS, 3), dtype=np.float16)
    v["encoder/conv1/bias"] = np.zeros(D, dtype=np.float16)
    v["encoder/conv2/weight"] = np.zeros((D, D, 3), dtype=np.float16)
    v["encoder/conv2/bias"] = np.zeros(D, dtype=np.float16)
    v["encoder/position_encodings/encodings"] = np.zeros((1500, D), dtype=np.float16)
    v["decoder/position_encodings/encodings"] = np.zeros((448, D), dtype=np.float16)
    v["decoder/embeddings/weight"] = np.zeros((VOCAB, D), dtype=np.float16)
    v["encoder/num_heads"] = np.array(2, dtype=np.int16)
    v["decoder/num_heads"] = np.array(2, dtype=np.int16)
    for stack in ("encoder", "decoder"):
        norm(f"{stack}/layer_norm")
        for i in range(layers):
            p = f"{stack}/layer_{i}"
            linear(f"{p}/self_attention/linear_0", 3 * D)
            linear(f"{p}/self_attention/linear_1", D)
            norm(f"{p}/self_attention/layer_norm")
            linear(f"{p}/ffn/linear_0", FFN)
            linear(f"{p}/ffn/linear_1", D, FFN)
            norm(f"{p}/ffn/layer_norm")
            if stack == "decoder":
                linear(f"{p}/attention/linear_0", D)
                linear(f"{p}/attention/linear_1", 2 * D)
                linear(f"{p}/attention/linear_2", D)
                norm(f"{p}/attention/layer_norm")
    return CT2Model("WhisperSpec", 3, v, {"decoder/projection/weight": "decoder/embeddings/weight"})


def test_fused_projections_are_split_and_k_has_no_bias() -> None:
    m = tiny_ct2()
    sd = hf_state_dict(m)
    fused = m["encoder/layer_1/self_attention/linear_0/weight"]
    np.testing.assert_array_equal(sd["model.encoder.layers.1.self_attn.q_proj.weight"], fused[:D])
    np.testing.assert_array_equal(sd["model.encoder.layers.1.self_attn.k_proj.weight"], fused[D : 2 * D])
    np.testing.assert_array_equal(sd["model.encoder.layers.1.self_attn.v_proj.weight"], fused[2 * D :])
    assert "model.encoder.layers.1.self_attn.k_proj.bias" not in sd
    kv = m["decoder/layer_0/attention/linear_1/weight"]
    np.testing.assert_array_equal(sd["model.decoder.layers.0.encoder_attn.v_proj.weight"], kv[D:])
    assert sd["model.decoder.layers.0.fc1.weight"].shape == (FFN, D)
    assert "model.decoder.layer_norm.weight" in sd and "proj_out.weight" not in sd


def test_state_dict_has_exactly_the_hf_whisper_parameters() -> None:
    layers = 2
    sd = hf_state_dict(tiny_ct2(layers))
    # Encoder: 2 convs (w, b), positions, 15 per layer (attention with bias-less k, ffn, two norms),
    # final norm. Decoder: tokens, positions, 24 per layer (self and cross attention, ffn, three
    # norms), final norm.
    assert len(sd) == (5 + 15 * layers + 2) + (2 + 24 * layers + 2)


def test_config_dimensions_come_from_the_weights() -> None:
    config = hf_config(tiny_ct2(), {"suppress_ids": [1, 2], "suppress_ids_begin": [220, 50257]})
    assert config["d_model"] == D and config["num_mel_bins"] == MELS
    assert config["encoder_layers"] == config["decoder_layers"] == 2
    assert config["encoder_attention_heads"] == 2 and config["encoder_ffn_dim"] == FFN
    assert config["vocab_size"] == VOCAB and config["max_source_positions"] == 1500
    assert config["suppress_tokens"] == [1, 2]
