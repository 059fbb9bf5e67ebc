/* SPDX-License-Identifier: MIT */
/* rnd_annotate.c: burned-in text annotations (see rnd.h, section "annotation").
 *
 * The font is drawn here as a sheet of ASCII art, 12 glyphs per strip, so that it can be read
 * and corrected in review; rnd_font_glyph reads it directly (a lookup per pixel costs nothing
 * next to the few hundred pixels of text an annotation has). Glyphs are 5 x 9 inside a 6 x 10
 * cell: capitals and digits use rows 0-6 (baseline under row 6), lowercase x-height is rows 2-6,
 * descenders use rows 7-8; the sixth column and tenth row are spacing.
 *
 * Drawing takes two passes over everything: first every lit glyph pixel paints its block grown
 * by one pixel in black, then every lit pixel paints its block in white. The black ring is
 * therefore exactly one pixel wide at any scale, and no glyph's outline can cover another's
 * text, even where lines or corners overlap on small images. Every write goes through one
 * clipping fill, so nothing outside the image's rows and columns is ever touched. */
#include "rnd_internal.h"

#include <string.h>

#define GLYPH_W   5 /* drawn columns of a cell */
#define GLYPH_H   9 /* drawn rows of a cell */
#define PER_STRIP 12
#define N_GLYPHS  95 /* 0x20..0x7E */

/* clang-format off */
static const char k_sheet[(N_GLYPHS + PER_STRIP - 1) / PER_STRIP][GLYPH_H][PER_STRIP * 6] = {
    /*       !     "     #     $     %     &     '     (     )     *     + */
    {
        "..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... .....",
        "..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#..",
        "..... ..#.. .#.#. ##### #.#.. ...#. #.#.. .#... .#... ...#. #.#.# ..#..",
        "..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. #####",
        "..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#..",
        "..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#..",
        "..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... .....",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    },
    /* ,     -     .     /     0     1     2     3     4     5     6     7 */
    {
        "..... ..... ..... ..... .###. ..#.. .###. ##### ...#. ##### ..##. #####",
        "..... ..... ..... ....# #...# .##.. #...# ...#. ..##. #.... .#... ....#",
        "..... ..... ..... ...#. #..## ..#.. ....# ..#.. .#.#. ####. #.... ...#.",
        "..... ##### ..... ..#.. #.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#..",
        "..... ..... ..... .#... ##..# ..#.. ..#.. ....# ##### ....# #...# .#...",
        ".##.. ..... .##.. #.... #...# ..#.. .#... #...# ...#. #...# #...# .#...",
        "..#.. ..... .##.. ..... .###. .###. ##### .###. ...#. .###. .###. .#...",
        ".#... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    },
    /* 8     9     :     ;     <     =     >     ?     @     A     B     C */
    {
        ".###. .###. ..... ..... ...#. ..... .#... .###. .###. .###. ####. .###.",
        "#...# #...# .##.. .##.. ..#.. ..... ..#.. #...# #...# #...# #...# #...#",
        "#...# #...# .##.. .##.. .#... ##### ...#. ....# ....# #...# #...# #....",
        ".###. .#### ..... ..... #.... ..... ....# ...#. .##.# #...# ####. #....",
        "#...# ....# .##.. .##.. .#... ##### ...#. ..#.. #.#.# ##### #...# #....",
        "#...# ...#. .##.. ..#.. ..#.. ..... ..#.. ..... #.#.# #...# #...# #...#",
        ".###. .##.. ..... .#... ...#. ..... .#... ..#.. .###. #...# ####. .###.",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    },
    /* D     E     F     G     H     I     J     K     L     M     N     O */
    {
        "###.. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.",
        "#..#. #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#",
        "#...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#",
        "#...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#",
        "#...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#",
        "#..#. #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#",
        "###.. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    },
    /* P     Q     R     S     T     U     V     W     X     Y     Z     [ */
    {
        "####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###.",
        "#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#...",
        "#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. #...# ...#. .#...",
        "####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. .#.#. ..#.. .#...",
        "#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#...",
        "#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#...",
        "#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###.",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",
    },
    /* \     ]     ^     _     `     a     b     c     d     e     f     g */
    {
        "..... .###. ..#.. ..... .#... ..... #.... ..... ....# ..... ..##. .....",
        "#.... ...#. .#.#. ..... ..#.. ..... #.... ..... ....# ..... .#..# .....",
        ".#... ...#. #...# ..... ...#. .###. #.##. .###. .##.# .###. .#... .####",
        "..#.. ...#. ..... ..... ..... ....# ##..# #.... #..## #...# ###.. #...#",
        "...#. ...#. ..... ..... ..... .#### #...# #.... #...# ##### .#... #...#",
        "....# ...#. ..... ..... ..... #...# #...# #...# #...# #.... .#... #...#",
        "..... .###. ..... ..... ..... .#### ####. .###. .#### .###. .#... .####",
        "..... ..... ..... ##### ..... ..... ..... ..... ..... ..... ..... ....#",
        "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .###.",
    },
    /* h     i     j     k     l     m     n     o     p     q     r     s */
    {
        "#.... ..#.. ...#. #.... .##.. ..... ..... ..... ..... ..... ..... .....",
        "#.... ..... ..... #.... ..#.. ..... ..... ..... ..... ..... ..... .....",
        "#.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###. ####. .#### #.##. .####",
        "##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...# #...# #...# ##..# #....",
        "#...# ..#.. ...#. ##... ..#.. #.#.# #...# #...# #...# #...# #.... .###.",
        "#...# ..#.. ...#. #.#.. ..#.. #.#.# #...# #...# #...# #...# #.... ....#",
        "#...# .###. ...#. #..#. .###. #.#.# #...# .###. ####. .#### #.... ####.",
        "..... ..... #..#. ..... ..... ..... ..... ..... #.... ....# ..... .....",
        "..... ..... .##.. ..... ..... ..... ..... ..... #.... ....# ..... .....",
    },
    /* t     u     v     w     x     y     z     {     |     }     ~ */
    {
        ".#... ..... ..... ..... ..... ..... ..... ...## ..#.. ##... .....",
        ".#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. .....",
        "###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#...",
        ".#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.#",
        ".#... #...# #...# #.#.# ..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#.",
        ".#..# #..## .#.#. #.#.# .#.#. #...# .#... ..#.. ..#.. ..#.. .....",
        "..##. .##.# ..#.. .#.#. #...# .#### ##### ...## ..#.. ##... .....",
        "..... ..... ..... ..... ..... ....# ..... ..... ..... ..... .....",
        "..... ..... ..... ..... ..... .###. ..... ..... ..... ..... .....",
    },
};
/* clang-format on */

int
rnd_annotate_scale(uint32_t width, uint32_t height)
{
    uint32_t m = width < height ? width : height;
    return m < 1024 ? 1 : (int)(m / 512);
}

/* Is pixel (x, y) of glyph `g` (0 = space) lit? */
static int
lit(int g, int x, int y)
{
    return k_sheet[g / PER_STRIP][y][(g % PER_STRIP) * 6 + x] == '#';
}

int
rnd_font_glyph(uint32_t cp, uint8_t rows[RND_FONT_H])
{
    int own = cp >= 0x20 && cp <= 0x7e;
    int g = (int)(own ? cp : '?') - 0x20;
    memset(rows, 0, RND_FONT_H);
    for (int y = 0; y < GLYPH_H; y++) {
        for (int x = 0; x < GLYPH_W; x++) {
            if (lit(g, x, y)) {
                rows[y] |= (uint8_t)(1u << (RND_FONT_W - 1 - x));
            }
        }
    }
    return own;
}

/* Decodes one UTF-8 sequence at *p and advances past it. Returns the glyph to draw (0 = space):
 * the character itself for printable ASCII, '?' for anything else. An invalid byte counts as
 * one character; a truncated sequence as one character with its valid part. */
static int
next_glyph(const unsigned char **p)
{
    const unsigned char *s = *p;
    unsigned c = s[0];
    int more = c >= 0xf0 && c <= 0xf4 ? 3 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xc2 && c <= 0xdf;
    s++;
    if (c < 0x80) {
        *p = s;
        return c >= 0x20 && c <= 0x7e ? (int)c - 0x20 : '?' - 0x20;
    }
    while (more-- > 0 && (*s & 0xc0) == 0x80) {
        s++;
    }
    *p = s;
    return '?' - 0x20;
}

typedef struct canvas {
    rnd_image *img;
    int64_t w, h;
    int s;
} canvas;

/* Fills the rectangle [x, x + w) x [y, y + h), clipped to the image, with grey level v. */
static void
fill(const canvas *c, int64_t x, int64_t y, int64_t w, int64_t h, uint8_t v)
{
    int64_t x1 = x + w, y1 = y + h;
    x = x < 0 ? 0 : x;
    y = y < 0 ? 0 : y;
    x1 = x1 > c->w ? c->w : x1;
    y1 = y1 > c->h ? c->h : y1;
    if (x >= x1 || y >= y1) {
        return;
    }
    const size_t ch = c->img->channels;
    for (int64_t r = y; r < y1; r++) {
        memset(c->img->data + (size_t)r * c->img->stride + (size_t)x * ch, v,
               (size_t)(x1 - x) * ch);
    }
}

/* Draws `n` characters of `text` with the cell's top-left at (x, y): the outline in pass 0,
 * the text in pass 1. */
static void
draw_text(const canvas *c, const char *text, int n, int64_t x, int64_t y, int pass)
{
    const unsigned char *p = (const unsigned char *)text;
    const int s = c->s;
    for (int i = 0; i < n && *p; i++, x += (int64_t)RND_FONT_W * s) {
        int g = next_glyph(&p);
        if (x >= c->w) {
            break;
        }
        for (int gy = 0; gy < GLYPH_H; gy++) {
            for (int gx = 0; gx < GLYPH_W; gx++) {
                if (!lit(g, gx, gy)) {
                    continue;
                }
                int64_t px = x + (int64_t)gx * s, py = y + (int64_t)gy * s;
                if (pass == 0) {
                    fill(c, px - 1, py - 1, s + 2, s + 2, 0);
                } else {
                    fill(c, px, py, s, s, 255);
                }
            }
        }
    }
}

/* Characters of `text` (UTF-8) up to `max`. */
static int
count_chars(const char *text, int max)
{
    const unsigned char *p = (const unsigned char *)text;
    int n = 0;
    while (*p && n < max) {
        (void)next_glyph(&p);
        n++;
    }
    return n;
}

int
rnd_annotate(rnd_image *img, const rnd_annotation *a, tsr_err *err)
{
    if (!img || !img->data || img->width == 0 || img->height == 0 ||
        (img->channels != 1 && img->channels != 3) ||
        img->stride < (size_t)img->width * img->channels) {
        return tsr_err_set(err, TSR_EINVAL, "annotate: invalid image");
    }
    if (!a) {
        return TSR_OK;
    }
    for (int k = 0; k < RND_CORNER_COUNT; k++) {
        if (a->n[k] < 0 || a->n[k] > RND_ANNOTATION_LINES) {
            return tsr_err_set(err, TSR_EINVAL, "annotate: %d lines in corner %d (max %d)", a->n[k],
                               k, RND_ANNOTATION_LINES);
        }
    }
    const int s = rnd_annotate_scale(img->width, img->height);
    const canvas c = {img, img->width, img->height, s};
    /* The margin keeps the outline inside the image with a little air beyond it. */
    const int64_t margin = 1 + 2 * (int64_t)s;
    const int64_t cell_w = (int64_t)RND_FONT_W * s, cell_h = (int64_t)RND_FONT_H * s;
    /* Characters that fit across: the last one needs its glyph, not its spacing column. */
    const int64_t avail = c.w - 2 * margin;
    int64_t fit = avail < (int64_t)GLYPH_W * s ? 0 : (avail + s) / cell_w;
    const int max_chars = fit > 4096 ? 4096 : (int)fit;

    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < RND_CORNER_COUNT; k++) {
            const int right = k == RND_CORNER_TOP_RIGHT || k == RND_CORNER_BOTTOM_RIGHT;
            const int bottom = k == RND_CORNER_BOTTOM_LEFT || k == RND_CORNER_BOTTOM_RIGHT;
            const int n = a->n[k];
            for (int i = 0; i < n; i++) {
                const char *t = a->lines[k][i];
                int chars = t ? count_chars(t, max_chars) : 0;
                if (chars == 0) {
                    continue;
                }
                /* Right-aligned text ends at its last glyph column, not at the spacing. */
                int64_t x = right ? c.w - margin - ((int64_t)chars * cell_w - s) : margin;
                int64_t y = bottom ? c.h - margin - (int64_t)GLYPH_H * s - (n - 1 - i) * cell_h
                                   : margin + i * cell_h;
                draw_text(&c, t, chars, x, y, pass);
            }
        }
    }
    return TSR_OK;
}
