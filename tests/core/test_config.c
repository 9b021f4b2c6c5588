/*
 * test_config.c — process configuration: flush-to-zero reaches every kernel
 * thread (inherited by the OpenMP pool from the thread that set it), and the
 * configuration report names the BLIS kernel family.
 */
#include "harness.h"
#include <omp.h>
#include <string.h>
#include <xmmintrin.h>

TEST(config_ftz_on_every_pool_thread) {
  (void)mg_test_ctx();  /* a context exists: mg_init ran on this thread */
  int bad = 0, n = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad, n)
  {
    unsigned csr = _mm_getcsr();
    bad += (csr & 0x8040) != 0x8040;  /* FTZ (bit 15) and DAZ (bit 6) */
    n += 1;
  }
  CHECK(n == 2);
  CHECK(bad == 0);
}

TEST(config_denormal_product_flushes_to_zero) {
  volatile float tiny = 1e-30f;
  volatile float r = tiny * 1e-10f;  /* 1e-40 is a float32 denormal */
  CHECK(r == 0.0f);
}

TEST(config_info_names_blis_arch) {
  char buf[1024];
  mg_config_info(buf, sizeof buf);
  CHECK(strstr(buf, "blis_arch=") != NULL);
  CHECK(strstr(buf, "ftz=1") != NULL);
}
