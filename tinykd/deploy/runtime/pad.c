/* PAD: copies the input into the output and fills the border with a constant. */
#include <stdint.h>

#ifndef TK_PAD_DECLARATIONS /* gathered into tinykd_params.h */
#define TK_PAD_DECLARATIONS

/* PAD of a (padded to) 4-D tensor with a constant. */
typedef struct {
    int in_dims[4], out_dims[4], before[4];
    int8_t value;
} tk_pad_params;

void tk_pad(const tk_pad_params *p, const int8_t *input, int8_t *output);

#endif /* TK_PAD_DECLARATIONS */

#include "tinykd_runtime.h"

void tk_pad(const tk_pad_params *p, const int8_t *input, int8_t *output)
{
    int o0, o1, o2, o3;
    for (o0 = 0; o0 < p->out_dims[0]; ++o0) {
        const int i0 = o0 - p->before[0];
        for (o1 = 0; o1 < p->out_dims[1]; ++o1) {
            const int i1 = o1 - p->before[1];
            for (o2 = 0; o2 < p->out_dims[2]; ++o2) {
                const int i2 = o2 - p->before[2];
                for (o3 = 0; o3 < p->out_dims[3]; ++o3) {
                    const int i3 = o3 - p->before[3];
                    const int inside = i0 >= 0 && i0 < p->in_dims[0] && i1 >= 0 && i1 < p->in_dims[1] &&
                                       i2 >= 0 && i2 < p->in_dims[2] && i3 >= 0 && i3 < p->in_dims[3];
                    *output++ = inside ? input[((i0 * p->in_dims[1] + i1) * p->in_dims[2] + i2) * p->in_dims[3] + i3]
                                       : p->value;
                }
            }
        }
    }
}
