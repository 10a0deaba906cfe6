"""Training loop: a short run on a few thousand MNIST images must learn; seeds reproduce runs
exactly; the per-epoch record and its timings are consistent."""
import numpy as np
import pytest

from ecp.experiments import data, train, train_cli
from ecp.nn.models import build_network

KEYS = {"epoch", "train_time_s", "test_time_s", "conv_time_s", "train_loss", "test_accuracy"}


@pytest.fixture(scope="module")
def small_mnist(mnist_path):
    return data.load_mnist(mnist_path, limit_train=3000, limit_test=1000)


@pytest.mark.slow
@pytest.mark.mnist
@pytest.mark.parametrize("pool", ["ecp", "max"])
def test_short_training_run_learns(small_mnist, pool):
    """Two epochs on 3000 images: far above chance (10%) on 1000 held-out test images."""
    config = train.TrainConfig(net="two-conv", pool=pool, mode=0 if pool == "ecp" else None, epochs=2)
    seen = []
    result = train.run(config, small_mnist, on_epoch=seen.append)
    assert set(result) == {"net", "pool", "mode", "eval_mode", "epochs", "best_test_accuracy", "first_epoch_at_98",
                           "diverged", "diverged_at"}
    assert result["diverged"] is False and result["diverged_at"] is None
    assert result["mode"] == (0 if pool == "ecp" else None)
    assert [e["epoch"] for e in result["epochs"]] == [1, 2] and seen == result["epochs"]
    for e in result["epochs"]:
        assert set(e) == KEYS
        assert 0 < e["conv_time_s"] < e["train_time_s"] and e["test_time_s"] > 0
    first, last = result["epochs"]
    assert last["train_loss"] < first["train_loss"] < np.log(10)
    assert result["best_test_accuracy"] == max(first["test_accuracy"], last["test_accuracy"])
    assert result["best_test_accuracy"] > 0.85, result


@pytest.mark.mnist
def test_same_seed_reproduces_a_run_exactly(small_mnist):
    subset = data.Dataset(small_mnist.train_images[:600], small_mnist.train_labels[:600],
                          small_mnist.test_images[:300], small_mnist.test_labels[:300])
    config = train.TrainConfig(net="one-conv", pool="ecp", mode="random", epochs=2, seed=4)

    def outcome(cfg):
        r = train.run(cfg, subset)
        return r["mode"], [(e["train_loss"], e["test_accuracy"]) for e in r["epochs"]]

    a = outcome(config)
    assert outcome(config) == a
    assert outcome(train.TrainConfig(**{**config.__dict__, "seed": 5}))[1] != a[1]
    # Random pooling with the same seed follows the same trajectory as ECP (same function,
    # same weights, same data order), up to float32 rounding.
    b = outcome(train.TrainConfig(**{**config.__dict__, "pool": "random"}))
    assert b[0] == a[0]
    np.testing.assert_allclose([x[0] for x in b[1]], [x[0] for x in a[1]], rtol=1e-3)


@pytest.mark.mnist
def test_sgd_optimizer_and_float64_train(small_mnist):
    subset = data.Dataset(small_mnist.train_images[:500], small_mnist.train_labels[:500],
                          small_mnist.test_images[:200], small_mnist.test_labels[:200])
    r = train.run(train.TrainConfig(net="one-conv", pool="max", epochs=1, optimizer="sgd", lr=0.05,
                                    momentum=0.9, dtype="float64"), subset)
    assert r["epochs"][0]["test_accuracy"] > 0.5


def test_train_epoch_handles_a_partial_last_batch():
    rng = np.random.default_rng(0)
    x = rng.random((23, 1, 28, 28)).astype(np.float32)
    y = rng.integers(10, size=23)
    net = build_network("one-conv", "avg", seed=0)
    opt = train.make_optimizer(net, "adam")
    calls = []
    stats = train.train_epoch(net, opt, x, y, batch_size=10, rng=1,
                              on_batch=lambda done, total, loss: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert opt.steps == 3
    assert np.isfinite(stats["train_loss"]) and stats["conv_time_s"] > 0


def test_evaluate_is_independent_of_batch_size():
    rng = np.random.default_rng(1)
    x = rng.random((37, 1, 28, 28)).astype(np.float32)
    y = rng.integers(10, size=37)
    net = build_network("two-conv", "ecp", 3, seed=0)
    pred = net.eval()(x).argmax(1)
    expected = float(np.mean(pred == y))
    for bs in (1, 5, 37, 1000):
        assert train.evaluate(net, x, y, batch_size=bs) == pytest.approx(expected)


def test_summarize():
    epochs = [{"epoch": 1, "test_accuracy": 0.95}, {"epoch": 2, "test_accuracy": 0.98},
              {"epoch": 3, "test_accuracy": 0.985}, {"epoch": 4, "test_accuracy": 0.97}]
    assert train.summarize(epochs) == (0.985, 2)
    assert train.summarize(epochs[:1]) == (0.95, None)
    assert train.mode_record([]) is None
    assert train.mode_record([2, 2]) == 2
    assert train.mode_record([1, 3]) == [1, 3]


def test_config_validation():
    with pytest.raises(ValueError, match="mode applies only to pool random or ecp"):
        train.TrainConfig(pool="max", mode=1).validate()
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train.TrainConfig(optimizer="rmsprop").validate()
    with pytest.raises(ValueError, match="momentum applies only to optimizer sgd"):
        train.TrainConfig(momentum=0.9).validate()
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        train.TrainConfig(epochs=0).validate()
    with pytest.raises(ValueError, match="mode must be an integer in 0..3"):
        train.TrainConfig(mode=7).validate()
    with pytest.raises(ValueError, match="lr_decay must be in \\(0, 1\\]"):
        train.TrainConfig(lr_decay=0).validate()
    with pytest.raises(ValueError, match="lr_decay must be in"):
        train.TrainConfig(lr_decay=1.5).validate()
    with pytest.raises(ValueError, match="lr_min must be a finite number >= 0"):
        train.TrainConfig(lr_min=-1.0).validate()
    with pytest.raises(TypeError, match="training images must be"):
        net = build_network("one-conv", "max")
        train.train_epoch(net, train.make_optimizer(net), np.zeros((2, 1, 28, 28)), np.zeros(2, int), rng=0)


def test_learning_rate_schedule():
    cfg = train.TrainConfig(lr=1e-3, lr_decay=0.5, lr_min=1e-4)
    assert [train.lr_for_epoch(cfg, e) for e in (1, 2, 3, 4, 5)] == [1e-3, 5e-4, 2.5e-4, 1.25e-4, 1e-4]
    assert train.lr_for_epoch(train.TrainConfig(lr=1e-3, lr_decay=1.0), 50) == 1e-3
    # a rate set below the floor is kept, never raised to it
    assert train.lr_for_epoch(train.TrainConfig(lr=1e-6, lr_min=1e-5), 3) == 1e-6


@pytest.mark.mnist
def test_run_applies_the_schedule_to_the_optimizer(small_mnist, monkeypatch):
    subset = data.Dataset(small_mnist.train_images[:200], small_mnist.train_labels[:200],
                          small_mnist.test_images[:100], small_mnist.test_labels[:100])
    made, rates = [], []
    real = train.make_optimizer

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(train, "make_optimizer", spy)
    cfg = train.TrainConfig(net="one-conv", pool="ecp", mode=1, epochs=3, lr=2e-3, lr_decay=0.25)
    train.run(cfg, subset, on_epoch=lambda record: rates.append(made[0].lr))
    assert rates == [2e-3, 5e-4, 1.25e-4]


def test_paper_settings_flag():
    from ecp.experiments import cli

    parser = cli.build_parser()
    args = parser.parse_args(["train", "--net", "two-conv", "--pool", "ecp", "--paper-settings",
                              "--lr", "0.1", "--lr-decay", "0.3", "--optimizer", "adam", "--batch-size", "7"])
    cfg = train_cli.config_from_args(args)
    assert (cfg.optimizer, cfg.batch_size, cfg.lr, cfg.lr_decay, cfg.momentum) == ("sgd", 50, 1e-3, 1.0, 0.0)
    default = train_cli.config_from_args(parser.parse_args(["train", "--net", "one-conv", "--pool", "max"]))
    assert (default.optimizer, default.lr, default.lr_decay, default.lr_min) == ("adam", 1e-3, 0.5, 1e-5)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--net", "one-conv", "--pool", "max", "--lr-decay", "0"])


# ----------------------------------------------------------------------------- divergence

def _random_dataset(n_train=60, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    return data.Dataset(rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                        rng.integers(0, 10, n_train, dtype=np.uint8),
                        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                        rng.integers(0, 10, n_test, dtype=np.uint8))


def test_train_epoch_stops_at_the_first_non_finite_loss_before_its_update():
    rng = np.random.default_rng(0)
    x = rng.random((30, 1, 28, 28)).astype(np.float32)
    x[rng.permutation(30)[:1]] = np.nan  # one poisoned image: its batch's loss is NaN
    y = rng.integers(10, size=30)
    net = build_network("one-conv", "avg", seed=0)
    opt = train.make_optimizer(net, "sgd", lr=0.01)
    seen = []
    with pytest.raises(train.Diverged) as info:
        train.train_epoch(net, opt, x, y, batch_size=10, rng=1, on_batch=lambda d, t, loss: seen.append(d))
    exc = info.value
    assert np.isnan(exc.loss) and exc.epoch is None and 1 <= exc.batch <= 3
    assert seen == list(range(1, exc.batch)) and opt.steps == exc.batch - 1  # no update from the NaN batch
    assert np.isfinite(net.parameters()[0]).all()
    assert str(exc) == f"the loss became nan at batch {exc.batch}"
    assert isinstance(exc, FloatingPointError) and not isinstance(exc, ValueError)  # not "bad input"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow on the way to the NaN is the point
def test_run_reports_where_it_diverged_and_keeps_the_completed_epochs(monkeypatch):
    dataset = _random_dataset()
    result = train.run(train.TrainConfig(net="one-conv", pool="max", epochs=3, optimizer="sgd", lr=1e30), dataset)
    assert result["diverged"] is True and result["epochs"] == [] and result["best_test_accuracy"] is None
    at = result["diverged_at"]
    assert at["epoch"] == 1 and at["batch"] >= 1 and not np.isfinite(at["loss"])
    # Divergence in a later epoch: the epochs before it stay in the record.
    real, calls = train.train_epoch, []

    def epoch_that_diverges_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise train.Diverged(4, float("inf"))
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "train_epoch", epoch_that_diverges_second)
    result = train.run(train.TrainConfig(net="one-conv", pool="ecp", mode=0, epochs=3), dataset)
    assert [e["epoch"] for e in result["epochs"]] == [1] and len(calls) == 2
    assert result["diverged_at"] == {"epoch": 2, "batch": 4, "loss": float("inf")}
    assert result["best_test_accuracy"] == result["epochs"][0]["test_accuracy"]


def test_per_batch_config_and_record(small_mnist):
    config = train.TrainConfig(net="one-conv", pool="random", mode="per-batch", eval_mode=3, epochs=1)
    result = train.run(config, small_mnist)
    assert (result["mode"], result["eval_mode"]) == ("per-batch", 3)
    assert train.run(train.TrainConfig(net="one-conv", pool="max", epochs=1), small_mnist)["eval_mode"] is None
    with pytest.raises(ValueError, match="eval_mode='ensemble' needs mode='per-batch'"):
        train.TrainConfig(pool="ecp", mode=2, eval_mode="ensemble").validate()
    with pytest.raises(ValueError, match="eval_mode applies only to pool random or ecp"):
        train.TrainConfig(pool="avg", eval_mode=0).validate()
    with pytest.raises(ValueError, match="mode must be 0..3, 'random' or 'per-batch'"):
        train.TrainConfig(pool="ecp", mode="sometimes").validate()
    with pytest.raises(ValueError, match="eval_mode"):
        train.TrainConfig(pool="ecp", mode="per-batch", eval_mode=7).validate()
