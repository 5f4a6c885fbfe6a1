/* The C backend on the host with every layer's output written out: `trace INPUT TRACE` runs one input
 * vector and writes, per layer, i32 layer index | i32 byte count | the layer's int8 output. tinykd verify
 * compares it with TFLM's tensors to name the first layer that differs. tinykd_model.c calls
 * TINYKD_TRACE after each layer when the macro is defined, so it is included here, not linked. */
#include <stdint.h>
#include <stdio.h>

static FILE *trace;

#define TINYKD_TRACE(layer, data, bytes)                                                             \
    do {                                                                                             \
        int l_ = (layer), n_ = (bytes);                                                              \
        fwrite(&l_, 4, 1, trace);                                                                    \
        fwrite(&n_, 4, 1, trace);                                                                    \
        fwrite((data), 1, (size_t)n_, trace);                                                        \
    } while (0)

#include "tinykd_model.c"

int main(int argc, char **argv)
{
    static int8_t input[TINYKD_INPUT_BYTES], output[TINYKD_OUTPUT_BYTES];
    FILE *in = argc > 2 ? fopen(argv[1], "rb") : NULL;
    if (!in || fread(input, 1, sizeof(input), in) != sizeof(input))
        return 2;
    fclose(in);
    trace = fopen(argv[2], "wb");
    if (!trace)
        return 2;
    tinykd_invoke(input, output);
    return fclose(trace) == 0 ? 0 : 2;
}
