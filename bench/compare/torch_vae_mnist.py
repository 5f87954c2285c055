"""The seed's VAEs on MNIST in PyTorch on `examples/vae_mnist`'s protocol, for its figures:
binarized at 0.5, batch 128 (the 96 rows left over each epoch dropped, as ravi drops
them), one particle, Adam 1e-3, 10 epochs, the last iterate. Gaussian latents: the
closed-form KL; relaxed Bernoulli and concrete latents: the relaxed densities of the draw
in logit / log space (log q - log p), tau annealed geometrically per step from 1 to the
seed's 0.741. Prints per epoch the train and test negative ELBO per image (one draw per test
image, at the epoch's last temperature) and one JSON line at the end.

    bench/compare/.venv-torch/bin/python bench/compare/torch_vae_mnist.py LATENT [EPOCHS]
"""

import gzip
import json
import math
import struct
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.distributions import Normal
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

DATA = Path(__file__).resolve().parents[2] / "data" / "mnist"


def images(name):
    with gzip.open(DATA / name) as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
    return (x.reshape(n, rows * cols).float() / 255.0 > 0.5).float()


class Vae(torch.nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.latent = latent
        out = {"gaussian": 40, "relaxed-bernoulli": 20, "concrete": 200}[latent]
        inp = 200 if latent == "concrete" else 20
        self.enc = torch.nn.Sequential(torch.nn.Linear(784, 400), torch.nn.ReLU(), torch.nn.Linear(400, out))
        self.dec = torch.nn.Sequential(torch.nn.Linear(inp, 400), torch.nn.ReLU(), torch.nn.Linear(400, 784))

    def neg_elbo(self, x, tau):
        """The negative ELBO of each row, one draw."""
        h = self.enc(x)
        if self.latent == "gaussian":
            mu, s = h[:, :20], F.softplus(h[:, 20:]) + 1e-5
            z = mu + s * torch.randn_like(s)
            kl = (0.5 * (s * s + mu * mu) - torch.log(s) - 0.5).sum(1)
        elif self.latent == "relaxed-bernoulli":
            q = LogitRelaxedBernoulli(tau, logits=h)
            p = LogitRelaxedBernoulli(tau, logits=torch.zeros_like(h))
            l = q.rsample()
            z = torch.sigmoid(l)
            kl = (q.log_prob(l) - p.log_prob(l)).sum(1)
        else:
            logits = h.reshape(-1, 20, 10)
            q = ExpRelaxedCategorical(tau, logits=logits)
            p = ExpRelaxedCategorical(tau, logits=torch.zeros_like(logits))
            log_y = q.rsample()
            z = log_y.exp().reshape(-1, 200)
            kl = (q.log_prob(log_y) - p.log_prob(log_y)).sum(1)
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").sum(1)
        return rec + kl


def main():
    latent = sys.argv[1]
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    torch.manual_seed(0)
    train, test = images("train-images.idx3-ubyte.gz"), images("t10k-images.idx3-ubyte.gz")
    batch = 128
    per_epoch = train.shape[0] // batch
    steps = per_epoch * epochs
    tau_end = 1.0
    for k in range(1000, steps + 1, 1000):
        tau_end = max(tau_end * math.exp(-3e-5 * k), 0.1)
    relaxed = latent != "gaussian"
    model = Vae(latent)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step, train_curve, test_curve = 0, [], []
    started = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(train.shape[0])
        total = 0.0
        for i in range(per_epoch):
            tau = torch.tensor(tau_end ** (step / max(steps - 1, 1)) if relaxed else 1.0)
            x = train[perm[i * batch : (i + 1) * batch]]
            loss = model.neg_elbo(x, tau).sum() / batch
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            step += 1
        with torch.no_grad():
            t = model.neg_elbo(test, tau).mean().item()
        train_curve.append(total / per_epoch)
        test_curve.append(t)
        print(f"epoch {epoch + 1:3d}  train -ELBO {train_curve[-1]:.3f}  test -ELBO {t:.3f}", flush=True)
    print(json.dumps({"latent": latent, "epochs": epochs, "train_neg_elbo": train_curve,
                      "test_neg_elbo": test_curve, "seconds": time.perf_counter() - started,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
