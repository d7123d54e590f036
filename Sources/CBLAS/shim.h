// OpenBLAS's CBLAS header; Debian's libopenblas-dev installs it via the cblas.h alternative.
#include <cblas.h>
