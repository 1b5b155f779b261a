"""A deterministic tiny random-weight Gemma 3n checkpoint (`Gemma3nForConditionalGeneration`).

Built from transformers' config classes at toy sizes: a 4-layer text model of width 64 (head size 32,
sliding and full attention, KV sharing, AltUp, Laurel, per-layer inputs and activation sparsity as in
the published model), a 1-layer conformer audio tower over the extractor's 128 mel bins, and a vision
config naming timm's smallest MobileNetV3. The vision tower is built by whatever transformers maps
`Gemma3nVisionConfig` to: here `engine_plugins.gemma3n_vision`'s stand-in (no timm without torchvision),
so the checkpoint holds no vision weights; audio never reaches that tower.

The vocabulary follows Gemma 3n's layout, which the model's embedding code relies on: text tokens first
(`vocab_size_per_layer_input` of them), then a vision block opening with `<end_of_image>`,
`<image_soft_token>`, then an audio block opening with `<end_of_audio>`, `<audio_soft_token>`; the last
id pads short audio. The newline runs vLLM's Gemma 3n processor looks up ("\\n" .. "\\n\\n\\n\\n") are
whole tokens, as in Gemma's tokenizer, and the tokenizer puts `<bos>` first as Gemma's does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from tests.families.tiny import LAYER_GAIN, LOGIT_STD, MEL_BINS, _corpus, word_token_ids

HIDDEN = 64
HEAD_DIM = 32
BPE_VOCAB = 400
TEXT_VOCAB = 512  # ids below this are text (and get per-layer inputs)
BLOCK = 128  # vision and audio blocks, as in the published model
VOCAB = TEXT_VOCAB + 2 * BLOCK
TEXT_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>"]
TEXT_SPECIAL += ["<start_of_audio>"]
# Output rows of tokens that are not whole words, relative to the words': far below any likely word.
SMALL_ROW = 0.05
END_ROW_GAIN = 2.5
NEWLINES = ["\n", "\n\n", "\n\n\n", "\n\n\n\n"]

# google/gemma-3n-E2B-it's template, cut to what a transcription turn uses: `<bos>`, a system turn folded
# into the first user turn, text items trimmed, audio as `<audio_soft_token>`, the model turn opened.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'audio' -%}{{ '<audio_soft_token>' }}"
    "{%- elif item['type'] == 'image' -%}{{ '<image_soft_token>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


def build_tokenizer() -> Tokenizer:
    """A byte-level BPE, then Gemma 3n's special tokens at the ids its layout gives them."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*_corpus(), "Transcribe this audio into English:"], trainer=trainer)
    special = [*TEXT_SPECIAL]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in NEWLINES])
    fill = TEXT_VOCAB - tokenizer.get_vocab_size()
    blocks = [f"<unused{i}>" for i in range(fill)]
    blocks += ["<end_of_image>", "<image_soft_token>", *(f"<vision{i}>" for i in range(BLOCK - 2))]
    blocks += ["<end_of_audio>", "<audio_soft_token>", *(f"<audio{i}>" for i in range(BLOCK - 2))]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in blocks])
    assert tokenizer.get_vocab_size() == VOCAB and tokenizer.token_to_id("<end_of_image>") == TEXT_VOCAB
    bos = tokenizer.token_to_id("<bos>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    return tokenizer


def _hf_tokenizer(tokenizer: Tokenizer) -> Any:
    from transformers import PreTrainedTokenizerFast

    names = ("image_token", "boi_token", "eoi_token", "audio_token", "boa_token", "eoa_token")
    tokens = ("<image_soft_token>", "<start_of_image>", "<end_of_image>")
    tokens += ("<audio_soft_token>", "<start_of_audio>", "<end_of_audio>")
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        extra_special_tokens=dict(zip(names, tokens, strict=True)),
    )


def _config(ids: dict[str, int]) -> Any:
    from transformers import Gemma3nConfig

    text = {
        "vocab_size": VOCAB,
        "vocab_size_per_layer_input": TEXT_VOCAB,
        "hidden_size": HIDDEN,
        "hidden_size_per_layer_input": 16,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 4,
        "num_attention_heads": HIDDEN // HEAD_DIM,
        "num_key_value_heads": 1,
        "head_dim": HEAD_DIM,
        "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        "sliding_window": 128,
        "num_kv_shared_layers": 2,
        "laurel_rank": 8,
        "activation_sparsity_pattern": [0.95, 0.95, 0.0, 0.0],
        "pad_token_id": ids["<pad>"],
        "bos_token_id": ids["<bos>"],
        "eos_token_id": ids["<eos>"],
    }
    audio = {
        "vocab_size": BLOCK,
        "vocab_offset": TEXT_VOCAB + BLOCK,
        "input_feat_size": MEL_BINS,
        "hidden_size": HIDDEN,
        "conf_num_attention_heads": 2,
        "conf_num_hidden_layers": 1,
        "sscp_conv_channel_size": [8, 8],
    }
    vision = {
        "architecture": "mobilenetv3_small_050",
        "hidden_size": HIDDEN,
        "vocab_size": BLOCK,
        "vocab_offset": TEXT_VOCAB,
        "label_names": ["LABEL_0", "LABEL_1"],
    }
    return Gemma3nConfig(
        text_config=text,
        audio_config=audio,
        vision_config=vision,
        boi_token_id=ids["<start_of_image>"],
        eoi_token_id=ids["<end_of_image>"],
        image_token_id=ids["<image_soft_token>"],
        boa_token_id=ids["<start_of_audio>"],
        eoa_token_id=ids["<end_of_audio>"],
        audio_token_id=ids["<audio_soft_token>"],
        tie_word_embeddings=True,
    )


def _readable_rows(model: Any, tokenizer: Tokenizer, seed: int) -> None:
    """As tiny.py does: whole words and `<end_of_turn>` get large output rows, strong random text layers.

    The other rows are small, not zero: the embedding is tied to them, and vLLM's AltUp divides by a
    projection's magnitude floored at `finfo.min` (not a small positive number), so a zero embedding
    gives 0/0 = NaN there where transformers floors at 1e-5. Real weights never embed a token as zero.
    """
    generator = torch.Generator().manual_seed(seed + 1)
    embed = model.get_output_embeddings().weight  # tied to the text embedding
    scale = LOGIT_STD / embed.shape[1] ** 0.5
    rows = torch.randn(embed.shape, generator=generator) * (scale * SMALL_ROW)
    keep = [*word_token_ids(tokenizer), tokenizer.token_to_id("<end_of_turn>")]
    rows[keep] = torch.randn(len(keep), embed.shape[1], generator=generator) * scale
    # A larger end row ends answers after some 10-50 words instead of at the 448-token cap: the server
    # reads with that cap, and transformers generating 448 tokens takes a minute here.
    rows[keep[-1]] *= END_ROW_GAIN
    with torch.no_grad():
        embed.copy_(rows)
        # transformers embeds `<end_of_audio>` (an id in the audio block) with the audio embedder, vLLM with the
        # text table: give the text row the audio embedder's vector (before the text table's scale) so both agree.
        eoa = tokenizer.token_to_id("<end_of_audio>")
        text_table = model.get_input_embeddings()
        audio_row = model.model.embed_audio(input_ids=torch.tensor([[eoa]]))[0, 0]
        embed[eoa] = audio_row / text_table.embed_scale
        for name, param in model.named_parameters():
            if "language_model" in name and param.dim() == 2 and ("mlp" in name or "self_attn" in name):
                param.copy_(torch.randn(param.shape, generator=generator) * (LAYER_GAIN / param.shape[1] ** 0.5))
        # Random signs on the final norm: with tied embeddings the last token is otherwise its own favourite successor.
        norm = model.get_decoder().norm.weight
        norm.copy_(torch.randint(0, 2, norm.shape, generator=generator).to(norm.dtype) * 2 - 1)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_gemma3n(directory: Path, seed: int = 0) -> Path:
    """Write the tiny Gemma 3n checkpoint into `directory` (created if missing) and return it."""
    from transformers import Gemma3nAudioFeatureExtractor, Gemma3nForConditionalGeneration, Gemma3nProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    from engine_plugins import gemma3n_vision

    gemma3n_vision.register()  # the same vision tower vLLM gets where timm cannot be imported
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    ids = tokenizer.get_vocab()
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = Gemma3nForConditionalGeneration(_config(ids)).to(torch.float32).eval()
    finally:
        torch.random.set_rng_state(state)
    _readable_rows(model, tokenizer, seed)
    model.save_pretrained(str(directory))
    processor = Gemma3nProcessor(
        feature_extractor=Gemma3nAudioFeatureExtractor(feature_size=MEL_BINS),
        image_processor=SiglipImageProcessorPil(size={"height": 64, "width": 64}),
        tokenizer=_hf_tokenizer(tokenizer),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(str(directory))
    # transformers 5 keeps the feature extractor inside processor_config.json only; vLLM also reads this file.
    processor_config = json.loads((directory / "processor_config.json").read_text(encoding="utf-8"))
    if isinstance(processor_config.get("feature_extractor"), dict):
        _write_json(directory / "preprocessor_config.json", processor_config["feature_extractor"])
    eos = [ids["<eos>"], ids["<end_of_turn>"]]
    generation = {"bos_token_id": ids["<bos>"], "eos_token_id": eos, "pad_token_id": ids["<pad>"], "do_sample": False}
    _write_json(directory / "generation_config.json", generation)
    return directory
