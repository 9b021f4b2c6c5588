"""keras_char_transformer.py — Keras 3's side of the character-transformer benchmark.

    KERAS_BACKEND=tensorflow|jax|torch python bench/peers/keras_char_transformer.py [--quick]

The model of examples/char_transformer.lua in Keras 3 (Embedding + a position Embedding,
pre-norm blocks of LayerNormalization, MultiHeadAttention(use_causal_mask=True), Dropout and a
gelu feed-forward, a final LayerNormalization and Dense logits), trained with model.fit on the
same characters of the Debian package fortunes (the cookie files' records, every tenth to
validation, windows of seq_len + 1 characters, the same 96-symbol vocabulary), with the
hyperparameters of bench/peers/char_transformer.json. Prints one "RESULT <json>" line with the
figures bench/peers/moongrad_char_transformer.lua reports (bench/run.py compares them).
"""
import json
import math
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FORTUNES = os.environ.get("MG_FORTUNES_DIR", "/usr/share/games/fortunes")


def records(path):
    """The records of a fortune cookie file, as moongrad's mg.datasets.fortunes reads them."""
    with open(path, "rb") as f:
        text = f.read()
    out, cur = [], []
    for line in (text + b"\n").split(b"\n")[:-1]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line == b"%":
            rec = b"\n".join(cur)
            if rec.strip():
                out.append(rec)
            cur = []
        else:
            cur.append(line)
    rec = b"\n".join(cur)
    if rec.strip():
        out.append(rec)
    return out


def data(h):
    import numpy as np
    train, val = [], []
    for name in h["files"]:
        p = os.path.join(FORTUNES, name)
        if not os.path.exists(p):
            sys.exit("keras_char_transformer: %s is missing; install the Debian package fortunes" % p)
        for i, rec in enumerate(records(p), 1):
            (val if i % 10 == 0 else train).append(rec + b"\n\n")
    lut = np.full(256, 126 - 31, dtype=np.int64)        # ids from 0: "\n" 0, " ".."~" 1..95, others "~"
    lut[10] = 0
    lut[32:127] = np.arange(1, 96)

    def windows(text):
        ids = lut[np.frombuffer(text, dtype=np.uint8)]
        m = (len(text) - 1) // h["seq_len"]
        return ids[:m * h["seq_len"]].reshape(m, -1), ids[1:m * h["seq_len"] + 1].reshape(m, -1)
    return windows(b"".join(train)[:h["max_chars"]]), windows(b"".join(val)[:h["max_chars"] // 9])


def main():
    quick = "--quick" in sys.argv or os.environ.get("BENCH_QUICK") == "1"
    with open(os.path.join(HERE, "char_transformer.json")) as f:
        h = json.load(f)["quick" if quick else "full"]
    (x_train, y_train), (x_val, y_val) = data(h)
    import keras
    from keras import layers
    keras.utils.set_random_seed(1)
    vocab, T, d = 96, h["seq_len"], h["embed_dim"]

    class PositionEmbedding(layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.emb = layers.Embedding(T, d)

        def call(self, x):
            return x + self.emb(keras.ops.arange(T))

    inputs = keras.Input((T,), dtype="int32")
    x = PositionEmbedding()(layers.Embedding(vocab, d)(inputs))
    for _ in range(h["num_layers"]):
        a = layers.LayerNormalization(epsilon=1e-6)(x)
        a = layers.MultiHeadAttention(num_heads=h["num_heads"], key_dim=d // h["num_heads"])(a, a, use_causal_mask=True)
        x = x + layers.Dropout(h["dropout"])(a)
        f = layers.LayerNormalization(epsilon=1e-6)(x)
        f = layers.Dense(d)(layers.Dense(h["ff_dim"], activation="gelu")(f))
        x = x + layers.Dropout(h["dropout"])(f)
    logits = layers.Dense(vocab)(layers.LayerNormalization(epsilon=1e-6)(x))
    model = keras.Model(inputs, logits)
    model.compile(optimizer=keras.optimizers.Adam(h["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    epochs, state = [], {}

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            state["first"], state["n"] = True, 0

        def on_train_batch_begin(self, batch, logs=None):
            if state["first"]:
                state["t0"], state["first"] = time.perf_counter(), False

        def on_train_batch_end(self, batch, logs=None):
            state["t1"], state["n"] = time.perf_counter(), state["n"] + 1

        def on_epoch_end(self, epoch, logs=None):
            epochs.append(state["t1"] - state["t0"])

    t0 = time.perf_counter()
    hist = model.fit(x_train.astype("int32"), y_train.astype("int32"), batch_size=h["batch_size"], epochs=h["epochs"],
                     validation_data=(x_val.astype("int32"), y_val.astype("int32")), callbacks=[Timer()], verbose=0)
    total = time.perf_counter() - t0
    per_epoch = x_train.shape[0] * T
    steady = sum(epochs[1:])
    backend = keras.backend.backend()
    version = {"tensorflow": lambda: __import__("tensorflow").__version__, "jax": lambda: __import__("jax").__version__,
               "torch": lambda: __import__("torch").__version__}.get(backend, lambda: "?")()
    res = {
        "status": "ok", "system": "keras/" + backend, "bench": "char_transformer",
        "tokens_per_s": (len(epochs) - 1) * per_epoch / steady if steady > 0 else per_epoch / epochs[0],
        "tokens_per_s_fit": h["epochs"] * per_epoch / total, "fit_seconds": total, "first_epoch_s": epochs[0],
        "final_loss": hist.history["loss"][-1], "val_loss": hist.history["val_loss"][-1],
        "val_perplexity": math.exp(hist.history["val_loss"][-1]), "train_tokens": per_epoch,
        "params": model.count_params(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "config": "Keras %s, %s %s backend; model.fit (jit_compile auto)" % (keras.__version__, backend, version),
    }
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
