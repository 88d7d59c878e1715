// A C entry point into Meta's reference PDQ (facebook/ThreatExchange pdq/cpp) for
// make_cpp_arrays.py: RGB bytes through the reference's own fillFloatLumaFromRGB, then
// pdqHash256FromFloatLuma and pdqDihedralHash256esFromFloatLuma, each on a fresh luma buffer.
#include <pdq/cpp/downscaling/downscaling.h>
#include <pdq/cpp/hashing/pdqhashing.h>

#include <vector>

using namespace facebook::pdq::hashing;

extern "C" void pdq_reference(
    const unsigned char* rgb, int rows, int cols,  // row-major, 3 bytes a pixel
    unsigned short* words,     // 16: pdqHash256FromFloatLuma's Hash256.w
    int* quality,
    unsigned short* dihedral,  // 8 x 16: original, rotate90, ..., flip_minus1
    int* dihedral_quality) {
  auto luma = [&]() {
    std::vector<float> out(rows * cols);
    auto* p = const_cast<uint8_t*>(rgb);
    facebook::pdq::downscaling::fillFloatLumaFromRGB(
        p, p + 1, p + 2, rows, cols, cols * 3, 3, out.data());
    return out;
  };
  std::vector<float> scratch(rows * cols);
  float b64[64][64], b16x64[16][64], b16[16][16], aux[16][16];
  std::vector<float> one = luma();
  Hash256 hash;
  pdqHash256FromFloatLuma(
      one.data(), scratch.data(), rows, cols, b64, b16x64, b16, hash, *quality);
  for (int i = 0; i < 16; i++) words[i] = hash.w[i];
  std::vector<float> dih = luma();
  Hash256 h[8];
  pdqDihedralHash256esFromFloatLuma(dih.data(), scratch.data(), rows, cols, b64, b16x64, b16,
      aux, &h[0], &h[1], &h[2], &h[3], &h[4], &h[5], &h[6], &h[7], *dihedral_quality);
  for (int k = 0; k < 8; k++)
    for (int i = 0; i < 16; i++) dihedral[k * 16 + i] = h[k].w[i];
}
