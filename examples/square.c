/*
 * square.c - the shared app of the quickstart: "my-shared-app" with one function, square(x),
 * and one class, MyLifecycleClass, whose enter hook sets the state its method foo returns.
 *
 *     skiff deploy examples/square.c
 *     skiff call my-shared-app square 42                  # 1764
 *     skiff call my-shared-app square 1.5                 # 2.25
 *     skiff call my-shared-app MyLifecycleClass.foo       # "hello world"
 *
 * An int squares to an int (an OverflowError when the square does not fit in 64 bits), a float
 * to a float; anything else is a TypeError. examples/another_app.c calls it from another app.
 */
#include <skiff/app.h>

SKIFF_APP("my-shared-app");

static int square(skiff_ctx *ctx, skiff_value **out)
{
    const skiff_value *x = skiff_arg(ctx, "x");
    switch (skiff_value_type(x)) {
    case SKIFF_INT: {
        int64_t i = skiff_value_get_int(x), r;
        if (__builtin_mul_overflow(i, i, &r))
            return skiff_raise(ctx, "OverflowError", "square(%lld) does not fit in 64 bits",
                               (long long)i);
        *out = skiff_value_int(r);
        break;
    }
    case SKIFF_DOUBLE: {
        double d = skiff_value_get_double(x);
        *out = skiff_value_double(d * d);
        break;
    }
    default:
        return skiff_raise(ctx, "TypeError", "square() argument 'x' must be int or float, not %s",
                           skiff_type_name(skiff_value_type(x)));
    }
    if (!*out)
        return skiff_raise(ctx, "MemoryError", "out of memory");
    return 0;
}
SKIFF_FUNCTION(square, .signature = "x");

/* The reference example of a class with a lifecycle hook (Modal's @app.cls with @modal.enter):
 *
 *     @app.cls()
 *     class MyLifecycleClass:
 *         @modal.enter()
 *         def enter(self):
 *             self.var = "hello world"
 *
 *         @modal.method()
 *         def foo(self):
 *             return self.var
 */
struct lifecycle {
    const char *var;
};

static int lifecycle_enter(skiff_ctx *ctx)
{
    struct lifecycle *self = skiff_self(ctx);
    self->var = "hello world";
    return 0;
}

SKIFF_CLASS(MyLifecycleClass, struct lifecycle, .enter = {lifecycle_enter});

static int foo(skiff_ctx *ctx, skiff_value **out)
{
    struct lifecycle *self = skiff_self(ctx);
    *out = skiff_value_string(self->var);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_METHOD(MyLifecycleClass, foo, .signature = "");
