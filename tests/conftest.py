"""Fixtures: tiny models built from configs, tokenizers trained on the fly, synthetic data. No network."""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections import Counter

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["M3CLS_CACHE"] = tempfile.mkdtemp(prefix="m3cls-cache-")  # embeddings never go to ~/.cache in tests

TOPICS = {
    "GPT": ["furthermore", "delve", "tapestry", "moreover", "crucial", "landscape", "seamless", "robust",
            "综上所述", "值得注意的是"],
    "Human": ["lol", "yeah", "dunno", "kinda", "gonna", "weird", "stuff", "honestly", "哈哈", "我觉得"],
}
COMMON = ["the", "a", "of", "and", "to", "in", "it", "is", "was", "for", "on", "that", "this", "with"]


def make_texts(n: int, seed: int = 0, labels: tuple[str, ...] = ("GPT", "Human")) -> list[tuple[str, str]]:
    """(text, label) pairs whose label words make the task learnable; lengths vary from 4 to 60 words."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = TOPICS.get(label, TOPICS["GPT"])
        length = rng.choice([4, 6, 10, 20, 40, 60])
        text = " ".join(rng.choice(words) if rng.random() < 0.5 else rng.choice(COMMON) for _ in range(length))
        pairs.append((text, label))
    return pairs


MARKER = "tapestry"


def make_marker_texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) pairs of common filler words where one marker word decides the label: GPT texts hold
    MARKER once, Human texts never do."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        words = [rng.choice(COMMON) for _ in range(rng.randint(5, 12))]
        label = ("GPT", "Human")[i % 2]
        if label == "GPT":
            words.insert(rng.randrange(len(words) + 1), MARKER)
        pairs.append((" ".join(words), label))
    return pairs


def messages_record(text: str, label: str) -> dict:
    return {"messages": [{"role": "user", "content": "classify"}, {"role": "assistant", "content": text},
                         {"role": "tool", "content": label}]}


def _corpus() -> list[str]:
    return [t for t, _ in make_texts(400, seed=99)] + ["unknown words here 你好 世界"]


def build_tiny_xlmr(folder: str) -> str:
    """An XLM-RoBERTa (BGE-M3's architecture) with 2 layers of width 32 and a Unigram tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(_corpus(), trainers.UnigramTrainer(vocab_size=300, special_tokens=specials,
                                                               unk_token="<unk>"))
    # the trainer orders pieces of equal score differently from run to run; fix the ids so every session's
    # tiny model is the same
    pieces = json.loads(tok.to_str())["model"]["vocab"]
    rest = sorted(pieces[len(specials):], key=lambda piece: (-round(piece[1], 6), piece[0]))
    tok.model = models.Unigram([tuple(p) for p in pieces[: len(specials)] + rest], unk_id=specials.index("<unk>"))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>",
                                   model_max_length=128)
    config = XLMRobertaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, max_position_embeddings=130,
                              pad_token_id=tok.token_to_id("<pad>"), bos_token_id=0, eos_token_id=2,
                              type_vocab_size=1)
    import torch

    torch.manual_seed(0)
    XLMRobertaModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def build_tiny_bert(folder: str) -> str:
    """A BERT with 2 layers of width 32 and a WordPiece tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    # WordPiece's trainer picks among equal merges differently from run to run, so the vocabulary is built here:
    # every character (alone and as "##" continuation) and the most frequent words, the same in every session
    words = Counter(w for text in _corpus()
                    for w, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)))
    chars = sorted({c for w in words for c in w})
    frequent = [w for w, _ in sorted(words.items(), key=lambda wc: (-wc[1], wc[0])) if len(w) > 1]
    vocab = specials + chars + ["##" + c for c in chars]
    vocab += frequent[: 300 - len(vocab)]
    tok.model = models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=128)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        pad_token_id=0)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_xlmr(tmp_path_factory) -> str:
    return build_tiny_xlmr(str(tmp_path_factory.mktemp("tiny-xlmr")))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    return build_tiny_bert(str(tmp_path_factory.mktemp("tiny-bert")))


def write_json(path, obj) -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    return str(path)


@pytest.fixture(scope="session")
def messages_file(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("data")
    return write_json(folder / "train.json", [messages_record(t, y) for t, y in make_texts(120, seed=1)])


TRAIN_FLAGS = ["--num_train_epochs", "3", "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
               "--max_length", "64", "--logging_steps", "5", "--seed", "7", "--precision", "fp32"]


@pytest.fixture(scope="session")
def trained_xlmr(tiny_xlmr, messages_file, tmp_path_factory) -> str:
    """A tiny XLM-R fine-tuned through the CLI once for the whole session."""
    from m3cls.cli import main

    out = str(tmp_path_factory.mktemp("runs") / "xlmr")
    code = main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir", out,
                 *TRAIN_FLAGS])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def marker_xlmr(tiny_xlmr, tmp_path_factory) -> str:
    """A tiny XLM-R trained on make_marker_texts: the marker word alone decides GPT."""
    from m3cls.cli import main

    folder = tmp_path_factory.mktemp("marker")
    data = write_json(folder / "train.json", [{"text": t, "label": y} for t, y in make_marker_texts(160, seed=41)])
    out = str(folder / "model")
    code = main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", out,
                 *TRAIN_FLAGS, "--num_train_epochs", "4", "--no_baseline", "--no_report"])
    assert code == 0
    return out
# -- task types (issue 11): a multi-label and a regression model, trained once per session ---------------------
TASK_FLAGS = ["--num_train_epochs", "8", "--per_device_train_batch_size", "8", "--learning_rate", "5e-3",
              "--max_length", "32", "--logging_steps", "8", "--seed", "7", "--precision", "fp32"]


def _train_task(tiny_bert, tmp_path_factory, name: str, pairs, val_pairs, *flags: str) -> dict:
    from m3cls.cli import main

    folder = tmp_path_factory.mktemp(name)
    train = write_json(folder / "train.json", [{"text": t, "label": y} for t, y in pairs])
    val = write_json(folder / "val.json", [{"text": t, "label": y} for t, y in val_pairs])
    out = str(folder / "model")
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", train, "--validation_path", val,
                 "--output_dir", out, *TASK_FLAGS, *flags]) == 0
    return {"model": out, "train": train, "val": val, "val_texts": [t for t, _ in val_pairs]}


@pytest.fixture(scope="session")
def multilabel_run(tiny_bert, tmp_path_factory) -> dict:
    """A tiny BERT trained as a multi-label classifier (labels are JSON lists, so --task auto finds it)."""
    from task_data import make_label_sets

    return _train_task(tiny_bert, tmp_path_factory, "multilabel", make_label_sets(160, 1), make_label_sets(40, 2))


@pytest.fixture(scope="session")
def regression_run(tiny_bert, tmp_path_factory) -> dict:
    """A tiny BERT trained to predict a score from 0 to 10 (--task regression)."""
    from task_data import make_scores

    return _train_task(tiny_bert, tmp_path_factory, "regression", make_scores(160, 1), make_scores(40, 2),
                       "--task", "regression")


#: the CPU flags of each kind this project's machines have had (a subset: the ones m3cls reads)
FAKE_CPU_FLAGS = {
    "amx": {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"},  # Xeon
    "avx512_bf16": {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"},  # EPYC Zen 4
    "avx512": {"avx2", "fma", "avx512f", "avx512bw"},  # Xeon Skylake: AVX512 without bf16 or VNNI
    "avx2": {"avx2", "fma"},  # EPYC Zen 3
}


@pytest.fixture
def fake_cpu(monkeypatch):
    """``fake_cpu(kind)`` makes m3cls see a CPU of that kind (its flags in FAKE_CPU_FLAGS) for one test."""
    from m3cls import cpukinds

    def fake(kind: str) -> None:
        monkeypatch.setattr(cpukinds, "cpu_flags", lambda: frozenset(FAKE_CPU_FLAGS[kind]))

    return fake
