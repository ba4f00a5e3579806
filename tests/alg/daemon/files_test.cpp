// The daemon's private files (alg/daemon/files.cpp) written in pieces, as the status file is
// (gateway/status_stream.hpp): whole and private when every piece was put, and nothing left
// behind, the old file kept, when one could not be.
#include "alg/daemon/files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace pptp::daemon {
namespace {

class PrivateFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pptp-files-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/status.json";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string read() const {
    std::ifstream f(path_);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir_), {}));
  }
  std::string dir_, path_;
};

TEST_F(PrivateFile, PiecesMakeOneWholePrivateFile) {
  const auto r = write_private_file(path_, [](const PutPiece& put) { return put("{\n \"a\": ") && put("1\n}\n"); });
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(read(), "{\n \"a\": 1\n}\n");
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(entries(), 1u);  // no temporary file left
}

TEST_F(PrivateFile, AWriterThatFailsLeavesTheOldFileAndNoTemporary) {
  ASSERT_TRUE(write_private_file(path_, std::string_view("old\n")));
  const auto r = write_private_file(path_, [](const PutPiece& put) { return put("half") && false; });
  EXPECT_FALSE(r);
  EXPECT_EQ(read(), "old\n");
  EXPECT_EQ(entries(), 1u);
}

}  // namespace
}  // namespace pptp::daemon
