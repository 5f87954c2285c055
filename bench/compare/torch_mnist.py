"""The seed workloads of issue 16 in PyTorch, one full training step each (forward,
backward, Adam), on MNIST-shaped data of the same sizes as ravi's problems in
benches/problems.rs (1,024 rows of 784 pixels, minibatches of 128, one particle, Adam 1e-3,
the likelihood scaled to the rows, the KL in closed form where ravi's analytic KL has it).

    python torch_mnist.py NAME STEPS THREADS

prints `NAME us_per_step=T` after STEPS / 10 warm-up steps and STEPS timed ones.
"""

import math
import sys
import time

import torch
import torch.nn.functional as F

ROWS, BATCH, PIXELS = 1024, 128, 784


def stream(n, seed):
    """The same kind of pseudo-random pixels as ravi's benchmarks (values do not matter)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, generator=g) * 2.0 - 1.0


def mnist_like(binary):
    p = stream(ROWS * PIXELS, 5).reshape(ROWS, PIXELS)
    return (p > 0.3).float() if binary else (p + 1.0) / 2.0


LABELS = torch.arange(ROWS) % 10


def batches():
    """Minibatches of 128 from a fresh permutation each pass, as ravi draws them."""
    while True:
        perm = torch.randperm(ROWS)
        for i in range(0, ROWS - BATCH + 1, BATCH):
            yield perm[i : i + BATCH]


class GaussianLayer(torch.nn.Module):
    """A mean-field Gaussian over a Linear layer's weights and bias, scale softplus(rho)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        bound = math.sqrt(6.0 / (n_in + n_out))
        self.w_mu = torch.nn.Parameter(torch.empty(n_in, n_out).uniform_(-bound, bound))
        self.b_mu = torch.nn.Parameter(torch.zeros(n_out))
        rho = math.log(math.expm1(bound / 100.0))
        self.w_rho = torch.nn.Parameter(torch.full((n_in, n_out), rho))
        self.b_rho = torch.nn.Parameter(torch.full((n_out,), rho))

    def scales(self):
        return F.softplus(self.w_rho) + 1e-5, F.softplus(self.b_rho) + 1e-5

    def kl(self):
        """KL(q || N(0, 1)) in closed form."""
        total = 0.0
        for mu, s in ((self.w_mu, self.scales()[0]), (self.b_mu, self.scales()[1])):
            total = total + (0.5 * (s * s + mu * mu) - torch.log(s) - 0.5).sum()
        return total

    def reparam(self, x):
        sw, sb = self.scales()
        w = self.w_mu + sw * torch.randn_like(sw)
        b = self.b_mu + sb * torch.randn_like(sb)
        return x @ w + b

    def flipout(self, x):
        sw, sb = self.scales()
        mean = x @ self.w_mu + self.b_mu
        s_in = torch.randint(0, 2, x.shape).float() * 2 - 1
        s_out = torch.randint(0, 2, mean.shape).float() * 2 - 1
        dw = sw * torch.randn_like(sw)
        db = sb * torch.randn_like(sb)
        return mean + ((x * s_in) @ dw) * s_out + db

    def lrt(self, x):
        sw, sb = self.scales()
        mean = x @ self.w_mu + self.b_mu
        var = (x * x) @ (sw * sw) + sb * sb
        return mean + var.sqrt() * torch.randn_like(mean)


class Bnn(torch.nn.Module):
    def __init__(self, how):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            [GaussianLayer(784, 400), GaussianLayer(400, 400), GaussianLayer(400, 10)]
        )
        self.how = how

    def loss(self, x, y):
        h = x
        for i, layer in enumerate(self.layers):
            h = getattr(layer, self.how)(h)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        nll = F.cross_entropy(h, y, reduction="sum") * (ROWS / x.shape[0])
        return nll + sum(l.kl() for l in self.layers)


class GaussianVae(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Sequential(
            torch.nn.Linear(784, 400), torch.nn.ReLU(), torch.nn.Linear(400, 40)
        )
        self.dec = torch.nn.Sequential(
            torch.nn.Linear(20, 400), torch.nn.ReLU(), torch.nn.Linear(400, 784)
        )

    def loss(self, x, _y):
        out = self.enc(x)
        mu, s = out[:, :20], F.softplus(out[:, 20:]) + 1e-5
        z = mu + s * torch.randn_like(s)
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="sum")
        kl = (0.5 * (s * s + mu * mu) - torch.log(s) - 0.5).sum()
        return (rec + kl) * (ROWS / x.shape[0])


class RelaxedVae(torch.nn.Module):
    """Relaxed Bernoulli latents at τ = 0.74 with a logits-0 prior, both densities at the
    draw (ravi's standard estimator for relaxed latents)."""

    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Sequential(
            torch.nn.Linear(784, 400), torch.nn.ReLU(), torch.nn.Linear(400, 20)
        )
        self.dec = torch.nn.Sequential(
            torch.nn.Linear(20, 400), torch.nn.ReLU(), torch.nn.Linear(400, 784)
        )
        self.tau = torch.tensor(0.74)

    def loss(self, x, _y):
        logits = self.enc(x)
        q = torch.distributions.RelaxedBernoulli(self.tau, logits=logits)
        z = q.rsample()
        p = torch.distributions.RelaxedBernoulli(self.tau, logits=torch.zeros_like(logits))
        zc = z.clamp(1e-6, 1 - 1e-6)
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="sum")
        return (rec + (q.log_prob(zc) - p.log_prob(zc)).sum()) * (ROWS / x.shape[0])


WORKLOADS = {
    "mnist_vae_gaussian_b128": (GaussianVae, True),
    "mnist_vae_relaxed_bernoulli_b128": (RelaxedVae, True),
    "mnist_mlp400_mean_field_b128": (lambda: Bnn("reparam"), False),
    "mnist_mlp400_mean_field_graph_b128": (lambda: Bnn("reparam"), False),
    "mnist_mlp400_flipout_b128": (lambda: Bnn("flipout"), False),
    "mnist_mlp400_lrt_b128": (lambda: Bnn("lrt"), False),
}


def main():
    name, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    make, binary = WORKLOADS[name]
    model = make()
    x_all, y_all = mnist_like(binary), LABELS
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rows = batches()

    def step():
        idx = next(rows)
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x_all[idx], y_all[idx])
        loss.backward()
        opt.step()

    for _ in range(max(1, steps // 10)):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"{name} us_per_step={(time.perf_counter() - started) / steps * 1e6:.1f}")


if __name__ == "__main__":
    main()
