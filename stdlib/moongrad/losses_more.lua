-- moongrad.losses_more: the rest of Keras 3's losses, installed into mg.losses by losses.lua:
-- KLDivergence, Poisson, LogCosh, Hinge, SquaredHinge, CategoricalHinge, CosineSimilarity,
-- MeanSquaredLogarithmicError, MeanAbsolutePercentageError, BinaryFocalCrossentropy,
-- CategoricalFocalCrossentropy and CTC, each as a per-sample function (mg.losses.kl_divergence,
-- ...) and as a Loss class that reduces over the batch (reduction, sample_weight) as the others do.
--
-- Formulas are Keras 3's (keras/src/losses/losses.py), clipping included, so the same inputs give
-- the same numbers; where Keras passes logits through a sigmoid and then clips,
-- BinaryFocalCrossentropy{from_logits=true} uses the stable log-sigmoid form instead (equal away
-- from saturation, finite gradients at it). CTC is the forward (alpha) recursion in log space over
-- ops, so its gradient comes from autodiff and it stages; the blank is class 1 (Keras's 0) and
-- labels, counted from 1 like every class index here, are padded with 0. Portable Lua.
local mg = require("moongrad")
local core = require("moongrad.core")
local options = require("moongrad.options")

local EPS = 1e-7
local NEG = -1e30   -- log(0) in the CTC recursion: finite, so exp and gradients stay finite

return function(M, define, align)
  local SMOOTHING = { "number", min = 0, max = 1 }

  --- mg.losses.kl_divergence(y_true, y_pred) -> per sample sum(y_true * log(y_true / y_pred)), both clipped to [1e-7, 1] (also kld, KLD).
  function M.kl_divergence(y_true, y_pred)
    y_true = align(y_true, y_pred, "kl_divergence")
    local t, p = mg.clip(y_true, EPS, 1), mg.clip(y_pred, EPS, 1)
    return mg.sum(t * mg.log(t / p), -1)
  end

  --- mg.losses.poisson(y_true, y_pred) -> per sample mean(y_pred - y_true * log(y_pred + 1e-7)).
  function M.poisson(y_true, y_pred)
    y_true = align(y_true, y_pred, "poisson")
    return mg.mean(y_pred - y_true * mg.log(y_pred + EPS), -1)
  end

  --- mg.losses.log_cosh(y_true, y_pred) -> per sample mean(log(cosh(y_pred - y_true))), computed without overflow.
  function M.log_cosh(y_true, y_pred)
    y_true = align(y_true, y_pred, "log_cosh")
    local x = y_pred - y_true
    -- log(cosh x) = x + softplus(-2x) - log 2 (Keras's form: no cosh to overflow)
    return mg.mean(x + mg.softplus(x * -2) - math.log(2), -1)
  end

  -- Labels all in {0, 1} become {-1, 1}, as Keras's hinge losses do; other labels stay.
  local function hinge_labels(y_true)
    local binary = mg.all(mg.logical_or(mg.equal(y_true, 0), mg.equal(y_true, 1)))
    return mg.where(binary, y_true * 2 - 1, y_true)
  end

  --- mg.losses.hinge(y_true, y_pred) -> per sample mean(max(1 - y_true * y_pred, 0)); labels in {-1, 1} (or {0, 1}, converted).
  function M.hinge(y_true, y_pred)
    y_true = hinge_labels(align(y_true, y_pred, "hinge"))
    return mg.mean(mg.relu(1 - y_true * y_pred), -1)
  end

  --- mg.losses.squared_hinge(y_true, y_pred) -> per sample mean(max(1 - y_true * y_pred, 0)^2); labels in {-1, 1} (or {0, 1}).
  function M.squared_hinge(y_true, y_pred)
    y_true = hinge_labels(align(y_true, y_pred, "squared_hinge"))
    return mg.mean(mg.square(mg.relu(1 - y_true * y_pred)), -1)
  end

  --- mg.losses.categorical_hinge(y_true, y_pred) -> per sample max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0), one-hot labels.
  function M.categorical_hinge(y_true, y_pred)
    y_true = align(y_true, y_pred, "categorical_hinge")
    local pos = mg.sum(y_true * y_pred, -1)
    local neg = mg.max((1 - y_true) * y_pred, -1)
    return mg.relu(neg - pos + 1)
  end

  local function l2_normalize(x, axis)
    -- x / max(||x||, 1e-7) as Keras's normalize: x * min(rsqrt(sum x^2), 1e7)
    local ss = mg.sum(mg.square(x), { axis = axis, keepdims = true })
    return x * mg.rsqrt(mg.maximum(ss, EPS * EPS))
  end

  --- mg.losses.cosine_similarity(y_true, y_pred, axis=-1) -> per sample -sum(l2_normalize(y_true) * l2_normalize(y_pred)) along axis (-1 when the two point the same way).
  function M.cosine_similarity(y_true, y_pred, axis)
    axis = options.value("cosine_similarity", "axis", axis, "integer") or -1
    y_true = align(y_true, y_pred, "cosine_similarity")
    return -mg.sum(l2_normalize(y_true, axis) * l2_normalize(y_pred, axis), axis)
  end

  --- mg.losses.mean_squared_logarithmic_error(y_true, y_pred) -> per sample mean((log(1 + y_pred) - log(1 + y_true))^2), both floored at 1e-7 (also msle, MSLE).
  function M.mean_squared_logarithmic_error(y_true, y_pred)
    y_true = align(y_true, y_pred, "mean_squared_logarithmic_error")
    local a = mg.log(mg.maximum(y_pred, EPS) + 1)
    local b = mg.log(mg.maximum(y_true, EPS) + 1)
    return mg.mean(mg.square(a - b), -1)
  end

  --- mg.losses.mean_absolute_percentage_error(y_true, y_pred) -> per sample 100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7)) (also mape, MAPE).
  function M.mean_absolute_percentage_error(y_true, y_pred)
    y_true = align(y_true, y_pred, "mean_absolute_percentage_error")
    local d = mg.abs(y_true - y_pred) / mg.maximum(mg.abs(y_true), EPS)
    return mg.mean(d, -1) * 100
  end

  M.kld, M.KLD = M.kl_divergence, M.kl_divergence
  M.msle, M.MSLE = M.mean_squared_logarithmic_error, M.mean_squared_logarithmic_error
  M.mape, M.MAPE = M.mean_absolute_percentage_error, M.mean_absolute_percentage_error
  M.logcosh = M.log_cosh

  local FOCAL = { apply_class_balancing = "boolean", alpha = { "number", min = 0, max = 1 },
    gamma = { "number", min = 0 }, from_logits = "boolean", label_smoothing = SMOOTHING, axis = "integer" }

  local function checked(fname, o, spec)
    for k, rule in pairs(spec) do options.value(fname, k, o[k], rule) end
    return o
  end

  --- mg.losses.binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=false, alpha=0.25, gamma=2, from_logits=false, label_smoothing=0, axis=-1)
  --- Per sample focal binary cross-entropy (Lin et al.): each element's cross-entropy times
  --- (1 - p_t)^gamma, p_t the probability given to the true label; with apply_class_balancing,
  --- times alpha for positives and 1 - alpha for negatives. Mean over axis.
  function M.binary_focal_crossentropy(y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits,
                                       label_smoothing, axis)
    checked("binary_focal_crossentropy", { apply_class_balancing = apply_class_balancing, alpha = alpha, gamma = gamma,
      from_logits = from_logits, label_smoothing = label_smoothing, axis = axis }, FOCAL)
    alpha, gamma, axis = alpha or 0.25, gamma or 2.0, axis or -1
    y_true = align(y_true, y_pred, "binary_focal_crossentropy")
    if label_smoothing and label_smoothing > 0 then
      y_true = y_true * (1 - label_smoothing) + 0.5 * label_smoothing
    end
    local p, bce
    if from_logits then
      p = mg.sigmoid(y_pred)
      bce = mg.relu(y_pred) - y_pred * y_true + mg.log1p(mg.exp(-mg.abs(y_pred)))
    else
      p = y_pred
      local pc = mg.clip(y_pred, EPS, 1 - EPS)
      bce = -(y_true * mg.log(pc) + (1 - y_true) * mg.log(1 - pc))
    end
    local p_t = y_true * p + (1 - y_true) * (1 - p)
    local focal = mg.pow(1 - p_t, gamma) * bce
    if apply_class_balancing then focal = (y_true * alpha + (1 - y_true) * (1 - alpha)) * focal end
    return mg.mean(focal, axis)
  end

  --- mg.losses.categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2, from_logits=false, label_smoothing=0, axis=-1)
  --- Per sample focal cross-entropy of one-hot labels: sum(alpha * (1 - p)^gamma * -y_true * log(p))
  --- over the classes, p the (normalised, clipped) predicted probabilities.
  function M.categorical_focal_crossentropy(y_true, y_pred, alpha, gamma, from_logits, label_smoothing, axis)
    checked("categorical_focal_crossentropy", { alpha = alpha, gamma = gamma, from_logits = from_logits,
      label_smoothing = label_smoothing, axis = axis }, FOCAL)
    alpha, gamma, axis = alpha or 0.25, gamma or 2.0, axis or -1
    M._check_label_kind("categorical_focal_crossentropy", y_true, y_pred, "one_hot")
    y_true = align(y_true, y_pred, "categorical_focal_crossentropy")
    if label_smoothing and label_smoothing > 0 then
      local k = y_pred.shape[axis < 0 and y_pred.ndim + 1 + axis or axis]
      y_true = y_true * (1 - label_smoothing) + label_smoothing / k
    end
    local p = from_logits and mg.softmax(y_pred, axis) or y_pred
    p = p / mg.sum(p, { axis = axis, keepdims = true })
    p = mg.clip(p, EPS, 1 - EPS)
    local cce = -y_true * mg.log(p)
    return mg.sum(mg.pow(1 - p, gamma) * alpha * cce, axis)
  end

  -- ---- CTC ------------------------------------------------------------------------------------

  local function shape_text(t)
    local s = {}
    for i, n in ipairs(t.shape) do s[i] = type(n) == "number" and tostring(n) or "None" end
    return "(" .. table.concat(s, ", ") .. ")"
  end

  -- max-shifted log(exp a + exp b + exp c)
  local function lse3(a, b, c)
    local m = mg.maximum(mg.maximum(a, b), c)
    return m + mg.log(mg.exp(a - m) + mg.exp(b - m) + mg.exp(c - m))
  end

  --- mg.losses.ctc(y_true, y_pred) -> per sample connectionist temporal classification loss
  --- (Graves et al.): -log of the probability of the label sequence summed over every alignment.
  --- y_true (batch, max_label_length): class indices from 2, padded with 0; y_pred (batch, time,
  --- classes): logits, class 1 the blank (Keras's class 0). Every sample uses all time steps; a
  --- label sequence no alignment fits gives inf.
  function M.ctc(y_true, y_pred)
    if not mg.is_tensor(y_true) then y_true = mg.tensor(y_true, "int64") end
    if y_true.ndim ~= 2 or not mg.is_tensor(y_pred) or y_pred.ndim ~= 3 then
      options.raise(string.format("ctc: y_true must be (batch, max_label_length) and y_pred (batch, time, classes), "
        .. "got y_true %s and y_pred %s", shape_text(y_true), mg.is_tensor(y_pred) and shape_text(y_pred) or type(y_pred)))
    end
    local T, K, L = y_pred.shape[2], y_pred.shape[3], y_true.shape[2]
    if type(T) ~= "number" or type(K) ~= "number" or type(L) ~= "number" then
      options.raise("ctc: the time, class and label axes must have known sizes, got y_true " .. shape_text(y_true)
        .. " and y_pred " .. shape_text(y_pred))
    end
    local labels = y_true.dtype == "int64" and y_true or mg.cast(y_true, "int64")
    if not core.tracing() and labels:numel() > 0 then
      -- eagerly the labels are checked here (staged, one_hot below still catches those above K;
      -- a 1 there would read as a blank)
      local lo, hi = mg.min(labels):item(), mg.max(labels):item()
      if lo < 0 or hi > K or mg.any(mg.equal(labels, 1)):item() then
        options.raise(string.format("ctc: labels must be class indices 2..%d padded with 0 (class 1 is the blank), "
          .. "got values from %d to %d in y_true %s", K, lo, hi, shape_text(y_true)))
      end
    end
    local present = mg.not_equal(labels, 0)
    local len = mg.sum(mg.cast(present, "int64"), -1)                      -- (N,)
    -- the extended sequence blank, l1, blank, l2, ..., blank (S = 2L + 1), padding read as blank
    local lab = mg.where(present, labels, 1)
    local S = 2 * L + 1
    local blanks = mg.ones_like(lab)
    local ext = mg.reshape(mg.concat({ mg.unsqueeze(blanks, -1), mg.unsqueeze(lab, -1) }, 3), { -1, 2 * L })
    ext = mg.concat({ ext, mg.slice(blanks, { {}, { 1, 1 } }) }, 2)       -- (N, S)
    local logp = mg.log_softmax(y_pred, -1)                                -- (N, T, K)
    local onehot = mg.one_hot(ext, K, logp.dtype)                         -- (N, S, K); checks 1 <= ext <= K
    local lp = mg.matmul(logp, mg.transpose(onehot))          -- (N, T, S): log p_t(ext_s)
    -- the skip s-2 -> s is allowed onto a label that differs from the label two back
    local skip
    if S > 2 then
      local cur = mg.slice(ext, { {}, { 3, S } })
      local back = mg.slice(ext, { {}, { 1, S - 2 } })
      skip = mg.logical_and(mg.not_equal(cur, 1), mg.not_equal(cur, back))  -- (N, S-2)
    end
    local function neg_cols(n, like)
      return mg.zeros_like(mg.slice(like, { {}, { 1, n } })) + NEG
    end
    local lp1 = mg.squeeze(mg.slice(lp, { {}, { 1, 1 }, {} }), { axis = 2 })  -- (N, S)
    local start = mg.concat({ mg.ones_like(mg.slice(lp1, { {}, { 1, 2 } })),
      mg.zeros_like(mg.slice(lp1, { {}, { 3, S } })) }, 2)
    local alpha = mg.where(mg.greater(start, 0), lp1, NEG)
    for t = 2, T do
      local a1 = mg.concat({ neg_cols(1, alpha), mg.slice(alpha, { {}, { 1, S - 1 } }) }, 2)
      local a2 = neg_cols(S, alpha)
      if skip then
        a2 = mg.concat({ neg_cols(2, alpha), mg.where(skip, mg.slice(alpha, { {}, { 1, S - 2 } }), NEG) }, 2)
      end
      alpha = lse3(alpha, a1, a2) + mg.squeeze(mg.slice(lp, { {}, { t, t }, {} }), { axis = 2 })
    end
    -- end in the last label or the blank after it: positions 2*len and 2*len + 1
    local last = len * 2 + 1
    local ends = mg.one_hot(last, S, "int64") + mg.one_hot(mg.maximum(last - 1, 1), S, "int64")
    local lse = mg.logsumexp(mg.where(mg.greater(ends, 0), alpha, NEG), -1)
    -- no alignment at all (a label too long for the time steps): inf, as TF's ctc_loss gives
    return mg.where(mg.less(lse, NEG / 2), math.huge, -lse)
  end

  -- ---- classes --------------------------------------------------------------------------------

  --- mg.losses.KLDivergence{reduction=, name=}: Kullback-Leibler divergence sum(y_true * log(y_true / y_pred)) per sample ("kl_divergence").
  define("KLDivergence", "kl_divergence", function(t, p) return M.kl_divergence(t, p) end, { "kld", "KLD" })
  --- mg.losses.Poisson{reduction=, name=}: mean(y_pred - y_true * log(y_pred)) per sample ("poisson").
  define("Poisson", "poisson", function(t, p) return M.poisson(t, p) end)
  --- mg.losses.LogCosh{reduction=, name=}: mean(log(cosh(y_pred - y_true))) per sample ("log_cosh").
  define("LogCosh", "log_cosh", function(t, p) return M.log_cosh(t, p) end, { "logcosh" })
  --- mg.losses.Hinge{reduction=, name=}: mean(max(1 - y_true * y_pred, 0)), labels -1/1 (0/1 converted).
  define("Hinge", "hinge", function(t, p) return M.hinge(t, p) end)
  --- mg.losses.SquaredHinge{reduction=, name=}: mean(max(1 - y_true * y_pred, 0)^2), labels -1/1 (0/1 converted).
  define("SquaredHinge", "squared_hinge", function(t, p) return M.squared_hinge(t, p) end)
  --- mg.losses.CategoricalHinge{reduction=, name=}: max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0), one-hot labels.
  define("CategoricalHinge", "categorical_hinge", function(t, p) return M.categorical_hinge(t, p) end)
  --- mg.losses.CosineSimilarity{axis=-1, reduction=, name=}: minus the cosine similarity of y_true and y_pred along axis.
  --- Example:
  ---   local loss = mg.losses.CosineSimilarity()
  ---   print(loss(mg.tensor{{1.0, 0.0}}, mg.tensor{{2.0, 0.0}}))   -- tensor(-1., dtype=float32)
  define("CosineSimilarity", "cosine_similarity", function(t, p, s) return M.cosine_similarity(t, p, s.config.axis) end,
    nil, { axis = "integer" }, { axis = -1 })
  --- mg.losses.MeanSquaredLogarithmicError{reduction=, name=}: mean((log(1 + y_pred) - log(1 + y_true))^2) ("msle").
  define("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
    function(t, p) return M.mean_squared_logarithmic_error(t, p) end, { "msle", "MSLE" })
  --- mg.losses.MeanAbsolutePercentageError{reduction=, name=}: 100 * mean(|y_true - y_pred| / |y_true|) ("mape").
  define("MeanAbsolutePercentageError", "mean_absolute_percentage_error",
    function(t, p) return M.mean_absolute_percentage_error(t, p) end, { "mape", "MAPE" })
  --- mg.losses.BinaryFocalCrossentropy{apply_class_balancing=false, alpha=0.25, gamma=2, from_logits=false, label_smoothing=0, axis=-1, reduction=, name=}
  --- Binary cross-entropy down-weighting the easy examples by (1 - p_t)^gamma (focal loss).
  define("BinaryFocalCrossentropy", "binary_focal_crossentropy", function(t, p, s)
    local c = s.config
    return M.binary_focal_crossentropy(t, p, c.apply_class_balancing, c.alpha, c.gamma, c.from_logits,
      c.label_smoothing, c.axis)
  end, nil, FOCAL, { apply_class_balancing = false, alpha = 0.25, gamma = 2.0, from_logits = false,
    label_smoothing = 0.0, axis = -1 })
  --- mg.losses.CategoricalFocalCrossentropy{alpha=0.25, gamma=2, from_logits=false, label_smoothing=0, axis=-1, reduction=, name=}
  --- Categorical cross-entropy of one-hot labels down-weighting confident classes by alpha * (1 - p)^gamma.
  define("CategoricalFocalCrossentropy", "categorical_focal_crossentropy", function(t, p, s)
    local c = s.config
    return M.categorical_focal_crossentropy(t, p, c.alpha, c.gamma, c.from_logits, c.label_smoothing, c.axis)
  end, nil, { alpha = FOCAL.alpha, gamma = FOCAL.gamma, from_logits = "boolean", label_smoothing = SMOOTHING,
    axis = "integer" }, { alpha = 0.25, gamma = 2.0, from_logits = false, label_smoothing = 0.0, axis = -1 })
  --- mg.losses.CTC{reduction=, name=}: connectionist temporal classification; y_true (batch, max_label_length)
  --- labels from 2 padded with 0, y_pred (batch, time, classes) logits with class 1 the blank.
  define("CTC", "ctc", function(t, p) return M.ctc(t, p) end)
end
