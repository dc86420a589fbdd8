// PLACEHOLDER: replaced by the real receiver.
int main() { return 1; }
