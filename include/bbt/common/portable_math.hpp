#pragma once
// log and exp from + - * /, frexp and ldexp only, so that sampling and CMA-ES's step size give
// the same bits on every IEEE machine and compiler (libm's may differ in the last bit).
namespace bbt {

// Natural logarithm of x > 0 (subnormals included) from frexp and an atanh series.
double portable_log(double x);

// e^x: a Taylor series around x - k ln 2, scaled by 2^k; inf above ~709.78, 0 below ~-745.2.
double portable_exp(double x);

}  // namespace bbt
