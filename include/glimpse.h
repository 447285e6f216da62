/*
 * glimpse.h — the one public header of libglimpse.
 *
 * libglimpse runs Apple's on-device multimodal models (FastVLM, MobileCLIP2) on CPUs.
 *
 * Contract
 *  - Every fallible call returns a glimpse_status: 0 (GLIMPSE_OK) on success, a negative code on
 *    failure. Objects come back through OUT pointers, which are left untouched on failure.
 *  - Calls that work on a handle keep a readable message for their last failure, read with
 *    glimpse_model_errmsg / glimpse_ctx_errmsg. The library owns that text; it stays valid until
 *    the next call on the same handle. Calls that create a handle take an optional caller buffer
 *    (errbuf, errlen) for the message, since there is no handle yet.
 *  - No global mutable state: two models may live in one process. A model is immutable once
 *    opened and may be shared by several contexts; a context (activations, caches, thread pool)
 *    belongs to one caller thread at a time.
 *  - Freeing NULL is a harmless no-op.
 *
 * Example
 *    glimpse_model *m; glimpse_ctx *c; char err[256];
 *    if (glimpse_model_open("MobileCLIP2-S0", NULL, &m, err, sizeof err)) { puts(err); return 1; }
 *    glimpse_ctx_params cp = glimpse_ctx_default_params(); cp.n_threads = 4;
 *    glimpse_ctx_new(m, &cp, &c);
 *    float emb[512]; const char *img = "cat.jpg";
 *    if (glimpse_embed_image_files(c, &img, 1, emb, 1)) puts(glimpse_ctx_errmsg(c));
 *    glimpse_ctx_free(c); glimpse_model_close(m);
 */
#ifndef GLIMPSE_H
#define GLIMPSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define GLIMPSE_API __declspec(dllexport)
#else
#define GLIMPSE_API __attribute__((visibility("default")))
#endif

#define GLIMPSE_VERSION_STRING "0.1.0"

/* Status codes. Only ever appended to; numbers are never reused. */
typedef enum glimpse_status {
    GLIMPSE_OK = 0,
    GLIMPSE_ERR_INVALID_ARG = -1,   /* a NULL or out-of-range argument */
    GLIMPSE_ERR_IO = -2,            /* a file could not be opened, read or mapped */
    GLIMPSE_ERR_FORMAT = -3,        /* a file is corrupt, truncated or inconsistent */
    GLIMPSE_ERR_UNSUPPORTED = -4,   /* valid input that this build cannot handle */
    GLIMPSE_ERR_NOMEM = -5,         /* an allocation failed */
    GLIMPSE_ERR_TOO_LARGE = -6,     /* input over a configured limit (pixels, tokens, bytes) */
    GLIMPSE_ERR_MODEL_KIND = -7,    /* the model cannot do what was asked (e.g. caption with CLIP) */
    GLIMPSE_ERR_MISSING = -8,       /* a required tensor, file or config key is missing */
    GLIMPSE_ERR_CANCELLED = -9,     /* the caller asked to stop */
    GLIMPSE_ERR_CONTEXT_FULL = -10, /* the prompt or generation exceeds the context length */
    GLIMPSE_ERR_INTERNAL = -11      /* a bug: please report it */
} glimpse_status;

/* A fixed English string for a status code; never NULL. */
GLIMPSE_API const char *glimpse_status_str(int status);
/* The library version, e.g. "0.1.0". */
GLIMPSE_API const char *glimpse_version(void);
/* The SIMD path the kernels use on this CPU: "avx2", "neon", "neon+dotprod" or "scalar".
 * The environment variable GLIMPSE_ISA=scalar forces the plain-C reference kernels. */
GLIMPSE_API const char *glimpse_isa(void);

/* ---- Images ------------------------------------------------------------------------------ */

/* An 8-bit RGB image, rows packed (stride = 3*width). */
typedef struct glimpse_image {
    int32_t width, height;
    uint8_t *rgb; /* owned by whoever filled it; glimpse_image_free for images from the library */
} glimpse_image;

#define GLIMPSE_DEFAULT_MAX_PIXELS ((uint64_t)100000000) /* 100 MP */

/* Decodes a JPEG, PNG or WebP file to RGB as Pillow's Image.convert('RGB') does (alpha dropped,
 * 16-bit reduced to 8, palette and gray expanded; EXIF orientation not applied). Images with more
 * than max_pixels pixels are refused with GLIMPSE_ERR_TOO_LARGE (0 = the 100 MP default).
 * On failure errbuf (if not NULL) receives a one-line message naming the file. */
GLIMPSE_API glimpse_status glimpse_image_load(const char *path, uint64_t max_pixels,
                                              glimpse_image *out, char *errbuf, size_t errlen);
/* The same from a memory buffer; name is used in messages only (may be NULL). */
GLIMPSE_API glimpse_status glimpse_image_decode(const void *data, size_t size, const char *name,
                                                uint64_t max_pixels, glimpse_image *out,
                                                char *errbuf, size_t errlen);
GLIMPSE_API void glimpse_image_free(glimpse_image *img);

/* ---- Models and contexts ---------------------------------------------------------------- */

typedef struct glimpse_model glimpse_model;
typedef struct glimpse_ctx glimpse_ctx;

typedef enum glimpse_model_kind {
    GLIMPSE_MODEL_UNKNOWN = 0,
    GLIMPSE_MODEL_CLIP = 1, /* MobileCLIP / MobileCLIP2: image and text embeddings */
    GLIMPSE_MODEL_VLM = 2   /* FastVLM: image + prompt -> text */
} glimpse_model_kind;

typedef struct glimpse_model_params {
    const char *vocab_path;  /* tokenizer vocabulary when the model folder has none (may be NULL) */
    uint64_t max_pixels;     /* image pixel limit; 0 = GLIMPSE_DEFAULT_MAX_PIXELS */
    const char *mmproj_path; /* FastVLM from GGUF: its mmproj-*.gguf (NULL: mmproj-<name> beside the .gguf) */
} glimpse_model_params;

typedef struct glimpse_ctx_params {
    int32_t n_threads; /* worker threads including the caller's; <= 0 means 1 */
} glimpse_ctx_params;

GLIMPSE_API glimpse_model_params glimpse_model_default_params(void);
GLIMPSE_API glimpse_ctx_params glimpse_ctx_default_params(void);

/* Opens a model from a folder as downloaded (config + weights + tokenizer files) or from one
 * weights file. params may be NULL for the defaults. */
GLIMPSE_API glimpse_status glimpse_model_open(const char *path, const glimpse_model_params *params,
                                              glimpse_model **out, char *errbuf, size_t errlen);
GLIMPSE_API void glimpse_model_close(glimpse_model *model);
GLIMPSE_API glimpse_model_kind glimpse_model_get_kind(const glimpse_model *model);
GLIMPSE_API const char *glimpse_model_name(const glimpse_model *model);
GLIMPSE_API const char *glimpse_model_errmsg(const glimpse_model *model);

/* ---- Conversion to one GGUF file ------------------------------------------------------------ */

/* Weight storage types: ggml's Q8_0 / Q4_0 blocks (32 weights, f16 scale) for the matrices
 * that products read (linears, 1x1 convs); other weights stay f32 (or f16 with F16). */
typedef enum glimpse_wtype {
    GLIMPSE_WTYPE_F32 = 0,
    GLIMPSE_WTYPE_F16 = 1,
    GLIMPSE_WTYPE_Q8_0 = 2,
    GLIMPSE_WTYPE_Q4_0 = 3,
} glimpse_wtype;

/* Converts a model (folder or file, as glimpse_model_open takes it) into out_path: a GGUF file
 * with the weights (MobileCLIP: the image tower in inference form, BatchNorms folded), the
 * hyperparameters, preprocessing constants and tokenizer in its metadata, so that
 * glimpse_model_open(out_path) needs nothing beside it. FastVLM gives a pair, as llama.cpp's
 * multimodal models: out_path is the Qwen2 LLM in llama.cpp's qwen2 layout and metadata, and
 * mmproj-<name> beside it holds FastViTHD + projector (stored at Q8_0 when type is Q4_0);
 * open it with glimpse_model_params.mmproj_path. errbuf (may be NULL) gets a message on failure. */
GLIMPSE_API glimpse_status glimpse_convert(const char *model_path, const char *out_path, glimpse_wtype type,
                                           const glimpse_model_params *params, char *errbuf, size_t errlen);
/* The same with the image tower (MobileCLIP) or mmproj file (FastVLM) stored as vision_type, a
 * glimpse_wtype, while the text tower / LLM take type; vision_type -1 keeps the default (type,
 * or Q8_0 for FastVLM's tower when type is Q4_0). */
GLIMPSE_API glimpse_status glimpse_convert_ex(const char *model_path, const char *out_path, glimpse_wtype type,
                                              int vision_type, const glimpse_model_params *params, char *errbuf,
                                              size_t errlen);

GLIMPSE_API glimpse_status glimpse_ctx_new(glimpse_model *model, const glimpse_ctx_params *params,
                                           glimpse_ctx **out);
GLIMPSE_API void glimpse_ctx_free(glimpse_ctx *ctx);
GLIMPSE_API const char *glimpse_ctx_errmsg(const glimpse_ctx *ctx);


/* ---- MobileCLIP / MobileCLIP2: embeddings ------------------------------------------------ */

/* Embedding width (512 or 768); 0 for models without embeddings. */
GLIMPSE_API int32_t glimpse_embed_dim(const glimpse_model *model);
/* The square input resolution of the image tower (256, 224, 1024 for FastVLM). */
GLIMPSE_API int32_t glimpse_image_size(const glimpse_model *model);
/* exp(logit_scale) from the checkpoint (CLIP models; 100 when the file has none). */
GLIMPSE_API float glimpse_logit_scale(const glimpse_model *model);

/* Embeds n images, preprocessed exactly as the model's reference pipeline does. out receives
 * n * glimpse_embed_dim floats, row i for images[i]; normalize != 0 L2-normalises each row. */
GLIMPSE_API glimpse_status glimpse_embed_images(glimpse_ctx *ctx, const glimpse_image *images, int32_t n, float *out,
                                                int normalize);
/* The same from files, decoded and preprocessed in parallel on the context's threads. On a bad
 * file the call fails naming that file; nothing is guaranteed about out then. */
GLIMPSE_API glimpse_status glimpse_embed_image_files(glimpse_ctx *ctx, const char *const *paths, int32_t n,
                                                     float *out, int normalize);
/* Embeds n UTF-8 texts (tokenised with the model's CLIP tokenizer, 77 tokens). */
GLIMPSE_API glimpse_status glimpse_embed_texts(glimpse_ctx *ctx, const char *const *texts, int32_t n, float *out,
                                               int normalize);

/* The token ids the model sees for text: CLIP models give the 77 padded ids of the text
 * encoder; FastVLM gives the Qwen2 ids of the text as is (special tokens such as <|im_start|>
 * recognised, no template). Always sets *n_out to the full count and writes min(cap, count)
 * ids; returns GLIMPSE_ERR_TOO_LARGE when cap was too small (ids may be NULL with cap 0). */
GLIMPSE_API glimpse_status glimpse_tokenize(glimpse_model *model, const char *text, int32_t *ids, int32_t cap,
                                            int32_t *n_out);

/* ---- FastVLM: captions and answers ------------------------------------------------------- */

typedef struct glimpse_gen_params {
    int32_t max_new_tokens;  /* default 256 */
    float temperature;       /* 0 = greedy (default) */
    int32_t top_k;           /* 0 = off */
    float top_p;             /* 1 = off */
    float min_p;             /* 0 = off */
    float repeat_penalty;    /* 1 = off; applied to ids generated in this turn (CTRL/llama.cpp rule) */
    uint64_t seed;           /* sampling seed */
    const volatile int *cancel; /* generation stops with GLIMPSE_ERR_CANCELLED when *cancel != 0 */
} glimpse_gen_params;

GLIMPSE_API glimpse_gen_params glimpse_gen_default_params(void);

/* Called for every generated token. text/len: the UTF-8 text completed by this token (may be
 * empty while a multi-byte character is incomplete; never a partial character). Return non-zero
 * to stop generating. */
typedef int (*glimpse_token_fn)(void *user, int32_t token, const char *text, size_t len);

/* Starts a conversation about image (runs the vision tower once); NULL starts a text-only one. */
GLIMPSE_API glimpse_status glimpse_chat_set_image(glimpse_ctx *ctx, const glimpse_image *image);
/* Adds a user turn and generates the answer, streaming tokens to cb (may be NULL). Follow-up
 * turns reuse the KV cache: no second vision pass. Stops at <|im_end|> / <|endoftext|>. */
GLIMPSE_API glimpse_status glimpse_chat_ask(glimpse_ctx *ctx, const char *prompt, const glimpse_gen_params *params,
                                            glimpse_token_fn cb, void *user);

typedef struct glimpse_timings {
    double load_ms;        /* model open */
    double preprocess_ms;  /* last image: decode excluded, resize + normalise */
    double vision_ms;      /* last image: vision tower + projector */
    double prefill_ms;     /* last turn: prompt prefill */
    double ttft_ms;        /* last turn: from the image or prompt to the first token */
    double decode_ms;      /* last turn: all tokens after the first */
    int32_t prompt_tokens; /* last turn: prompt positions including image tokens */
    int32_t generated_tokens;
} glimpse_timings;

GLIMPSE_API glimpse_timings glimpse_ctx_timings(const glimpse_ctx *ctx);
/* Writes float32 .npy intermediates of the next image/turn into dir (NULL: off): pixels.npy,
 * vision_features.npy, image_embeds.npy, logits.npy (first generated position). */
GLIMPSE_API glimpse_status glimpse_ctx_set_dump_dir(glimpse_ctx *ctx, const char *dir);

#ifdef __cplusplus
}
#endif
#endif /* GLIMPSE_H */
